"""Unit and property tests of evidence.domain (pure rules, DOMAIN Part C)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence import domain as d
from evidence.domain import (
    Actor,
    DomainError,
    ExistingGpu,
    ExistingProduction,
    GpuState,
    GpuStatus,
    SyncAction,
    TransitionRequest,
)

P = GpuStatus.PENDIENTE
C = GpuStatus.CARGADO
R = GpuStatus.EN_REVISION
V = GpuStatus.VALIDADO
X = GpuStatus.RECHAZADO
LINK = "https://drive.google.com/drive/folders/abc123"

RESIDENTE = Actor("ana", frozenset({d.ROLE_RESIDENTE}))
REVISOR = Actor("rita", frozenset({d.ROLE_REVISOR}))
SUPERVISOR = Actor("sam", frozenset({d.ROLE_SUPERVISOR}))
ADMIN = Actor("root", frozenset({d.ROLE_ADMIN}))


def code_of(exc: pytest.ExceptionInfo[DomainError]) -> str:
    return exc.value.code


# ---------------------------------------------------------------- annex / eligibility (C.4.1)


@pytest.mark.parametrize(
    ("anexo", "expected"),
    [
        ("C-2", True),
        ("C-3", True),
        ("C2EXT", True),
        ("C3EXT", True),
        (" c-2 ", True),  # GP-E02 normalisation [DECIDE-C1]
        ("c3ext", True),
        ("C-1", False),  # GP-E02 partida 458
        ("C-2.", False),
        ("", False),
        (None, False),
    ],
)
def test_annex_requires_gpu(anexo: str | None, expected: bool) -> None:
    assert d.annex_requires_gpu(anexo) is expected


def test_eligibility_volume_and_import() -> None:
    assert d.is_gpu_eligible("C-2", Decimal("8"))  # GP-E01
    assert not d.is_gpu_eligible("C-2", Decimal("0"))  # GP-E02 volume 0
    assert not d.is_gpu_eligible("C-2", Decimal("8"), importacion_activa=False)  # GP-E02 459
    assert not d.is_gpu_eligible("C-1", Decimal("5"))  # GP-E02 458
    assert d.is_gpu_eligible(" c-2 ", Decimal("0.000001"))


def test_annex_set_is_configurable() -> None:
    assert d.is_gpu_eligible("C-1", Decimal(1), annexes={"c-1"})
    assert not d.is_gpu_eligible("C-2", Decimal(1), annexes={"C-1"})


@given(st.text(max_size=12), st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_eligibility_property(anexo: str, vol: Decimal) -> None:
    eligible = d.is_gpu_eligible(anexo, vol)
    assert eligible == (vol > 0 and anexo.strip().upper() in d.DEFAULT_GPU_ANNEXES)


# ---------------------------------------------------------------- status catalogue (C.2.1)


def test_legacy_ids_are_workflow_ids() -> None:  # GP-D01
    assert [s.legacy_id for s in GpuStatus] == [19, 20, 21, 22, 23]
    assert GpuStatus.from_legacy_id(19) is P
    assert GpuStatus.from_legacy_id(23) is X


@pytest.mark.parametrize("raw", [17, 1, 0, 24, -1])
def test_non_gpu_legacy_id_rejected(raw: int) -> None:  # GP-E05 id 17, GP-D02
    with pytest.raises(DomainError) as exc:
        GpuStatus.from_legacy_id(raw)
    assert code_of(exc) == "ESTATUS_NO_GPU"
    assert exc.value.status == 422
    assert exc.value.field == "estatus_id"


def test_parse_status_case_insensitive() -> None:
    assert GpuStatus.parse(" en_revision ") is R
    assert GpuStatus.parse("En Revision") is R
    with pytest.raises(DomainError):
        GpuStatus.parse("FACTURADO")


# ---------------------------------------------------------------- link validation (DECIDE-C3)


@pytest.mark.parametrize(
    "url",
    [
        LINK,
        "https://docs.google.com/document/d/1/edit",
        "  https://DRIVE.google.com/x  ",
        "https://drive.google.com:443/x",
    ],
)
def test_valid_links(url: str) -> None:
    assert d.validate_evidence_link(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("", "ARCHIVO_REQUERIDO"),
        ("   ", "ARCHIVO_REQUERIDO"),
        ("http://drive.google.com/x", "URL_INVALIDA"),
        ("ftp://drive.google.com/x", "URL_INVALIDA"),
        ("drive.google.com/x", "URL_INVALIDA"),
        ("https://evil.example.com/x", "URL_INVALIDA"),
        ("https://drive.google.com.evil.com/x", "URL_INVALIDA"),
        ("https://user:pw@drive.google.com/x", "URL_INVALIDA"),
        ("https://drive.google.com/a b", "URL_INVALIDA"),
        ("https://drive.google.com/" + "a" * 500, "URL_INVALIDA"),
        ("https://drive.google.com:99999/x", "URL_INVALIDA"),
        ("javascript:alert(1)", "URL_INVALIDA"),
    ],
)
def test_invalid_links(url: str, code: str) -> None:
    with pytest.raises(DomainError) as exc:
        d.validate_evidence_link(url)
    assert code_of(exc) == code
    assert exc.value.field == "archivo"


def test_allow_list_configurable() -> None:
    assert d.validate_evidence_link("https://files.example.com/x", {"files.example.com"})
    with pytest.raises(DomainError):
        d.validate_evidence_link(LINK, {"files.example.com"})


def test_empty_link_never_overwrites() -> None:
    assert d.merge_link(None, LINK) == LINK
    assert d.merge_link("  ", LINK) == LINK
    assert d.merge_link("https://drive.google.com/new", LINK) == "https://drive.google.com/new"
    assert d.merge_link(None, None) is None


def test_has_evidence_legacy_rule() -> None:
    assert d.has_evidence(LINK)
    assert not d.has_evidence(None)
    assert not d.has_evidence(" abc  ")


# ---------------------------------------------------------------- state machine (C.3.2)


def tr(
    state: GpuState,
    to: GpuStatus,
    actor: Actor,
    **kw: object,
) -> d.TransitionOutcome:
    return d.decide_transition(state, TransitionRequest(to=to, **kw), actor)  # type: ignore[arg-type]


@pytest.mark.spec("GP-E03")
def test_upload_review_validate_happy_path() -> None:
    out = tr(GpuState(P), C, RESIDENTE, archivo=LINK)
    assert (out.rule, out.to_status, out.archivo, out.sets_carga) == ("G2", C, LINK, True)
    out = tr(GpuState(C, archivo=LINK, usuario_carga="ana"), R, REVISOR)
    assert out.rule == "G4"
    out = tr(GpuState(R, archivo=LINK, usuario_carga="ana"), V, REVISOR)
    assert (out.rule, out.sets_revision) == ("G5", True)


@pytest.mark.spec("GP-E04")
def test_rejection_and_resubmission() -> None:
    state = GpuState(R, archivo=LINK, usuario_carga="ana")
    with pytest.raises(DomainError) as exc:
        tr(state, X, REVISOR)
    assert (code_of(exc), exc.value.status, exc.value.field) == ("NOTA_REQUERIDA", 422, "nota")
    with pytest.raises(DomainError):
        tr(state, X, REVISOR, nota="   ")
    out = tr(
        state, X, REVISOR, nota="Falta hoja de asistencia del 02/03", motivo="falta_asistencia"
    )
    assert out.nota_bloqueo == "Falta hoja de asistencia del 02/03"
    assert out.motivo == "FALTA_ASISTENCIA"
    with pytest.raises(DomainError) as exc:
        tr(state, X, REVISOR, nota="x", motivo="NO_EXISTE")
    assert code_of(exc) == "MOTIVO_INVALIDO"
    new = "https://drive.google.com/drive/folders/new"
    out = tr(GpuState(X, archivo=LINK, usuario_carga="ana"), C, RESIDENTE, archivo=new)
    assert (out.to_status, out.archivo, out.nota_bloqueo) == (C, new, None)
    # re-upload with an empty link keeps the existing one (never overwritten by empty)
    out = tr(GpuState(X, archivo=LINK), C, RESIDENTE, archivo="")
    assert out.archivo == LINK


@pytest.mark.spec("GP-E05")
def test_invalid_transitions() -> None:
    with pytest.raises(DomainError) as exc:
        tr(GpuState(P), V, ADMIN)
    assert (code_of(exc), exc.value.status) == ("TRANSICION_INVALIDA", 409)
    with pytest.raises(DomainError) as exc:
        tr(GpuState(P), C, RESIDENTE, archivo=None)
    assert (code_of(exc), exc.value.status) == ("ARCHIVO_REQUERIDO", 422)
    with pytest.raises(DomainError) as exc:
        tr(GpuState(P), C, RESIDENTE, archivo="")
    assert code_of(exc) == "ARCHIVO_REQUERIDO"
    with pytest.raises(DomainError) as exc:
        tr(GpuState(R, archivo=LINK), V, RESIDENTE)
    assert (code_of(exc), exc.value.status) == ("ROL_NO_AUTORIZADO", 403)
    with pytest.raises(DomainError) as exc:
        tr(GpuState(P), C, RESIDENTE, archivo="http://drive.google.com/x")
    assert code_of(exc) == "URL_INVALIDA"


@pytest.mark.spec("DECIDE-C6")
def test_reviewer_not_uploader() -> None:
    both = Actor("ana", frozenset({d.ROLE_RESIDENTE, d.ROLE_REVISOR}))
    for frm, to in [(C, R), (R, V), (R, X)]:
        with pytest.raises(DomainError) as exc:
            tr(GpuState(frm, archivo=LINK, usuario_carga="ana"), to, both, nota="n")
        assert (code_of(exc), exc.value.status) == ("REVISOR_IGUAL_CARGADOR", 403)
    # admin is also bound by it
    with pytest.raises(DomainError):
        tr(GpuState(R, archivo=LINK, usuario_carga="root"), V, ADMIN)


@pytest.mark.spec("GP-E07")
def test_billed_gpu_is_locked() -> None:
    for status in GpuStatus:
        for to in GpuStatus:
            with pytest.raises(DomainError) as exc:
                tr(GpuState(status, archivo=LINK, facturado=True), to, ADMIN, nota="x")
            assert (code_of(exc), exc.value.status) == ("GPU_FACTURADO", 409)


def test_reopen_by_supervisor() -> None:
    state = GpuState(V, archivo=LINK, usuario_carga="ana")
    with pytest.raises(DomainError) as exc:
        tr(state, R, SUPERVISOR)
    assert code_of(exc) == "NOTA_REQUERIDA"
    with pytest.raises(DomainError) as exc:
        tr(state, R, REVISOR, nota="x")
    assert code_of(exc) == "ROL_NO_AUTORIZADO"
    out = tr(state, R, SUPERVISOR, nota="foto borrosa")
    assert (out.rule, out.clears_revision, out.nota_bloqueo) == ("G7", True, "foto borrosa")


@pytest.mark.spec("G3")
def test_remove_link_before_review() -> None:
    out = tr(GpuState(C, archivo=LINK), P, RESIDENTE)
    assert (out.rule, out.archivo) == ("G3", None)


def test_closed_month_blocks_upload_not_review() -> None:
    with pytest.raises(DomainError) as exc:
        tr(GpuState(P, mes_cerrado=True), C, RESIDENTE, archivo=LINK)
    assert code_of(exc) == "MES_CERRADO"
    with pytest.raises(DomainError):
        tr(GpuState(C, archivo=LINK, mes_cerrado=True), P, RESIDENTE)
    assert tr(GpuState(C, archivo=LINK, mes_cerrado=True), R, REVISOR).to_status is R


def test_validate_requires_link() -> None:
    with pytest.raises(DomainError) as exc:
        tr(GpuState(R, archivo=None), V, REVISOR)
    assert code_of(exc) == "ARCHIVO_REQUERIDO"


def test_transition_table_exhaustive() -> None:
    """Every (from, to) pair not in the table is TRANSICION_INVALIDA for anybody."""
    allowed = {
        (P, C): "G2",
        (X, C): "G2",
        (C, P): "G3",
        (C, R): "G4",
        (R, V): "G5",
        (R, X): "G6",
        (V, R): "G7",
    }
    assert {k: v.rule for k, v in d.TRANSITIONS.items()} == allowed
    for frm in GpuStatus:
        for to in GpuStatus:
            state = GpuState(frm, archivo=LINK, usuario_carga="someone")
            if (frm, to) in allowed:
                out = tr(state, to, ADMIN, archivo=LINK, nota="motivo")
                assert out.to_status is to
            else:
                with pytest.raises(DomainError) as exc:
                    tr(state, to, ADMIN, archivo=LINK, nota="motivo")
                assert code_of(exc) == "TRANSICION_INVALIDA"


@given(
    st.sampled_from(list(GpuStatus)),
    st.sampled_from(list(GpuStatus)),
    st.frozensets(st.sampled_from([*d.ROLES, "sales.admin", "ops"])),
    st.booleans(),
)
def test_role_matrix_property(
    frm: GpuStatus, to: GpuStatus, roles: frozenset[str], facturado: bool
) -> None:
    state = GpuState(frm, archivo=LINK, usuario_carga="other", facturado=facturado)
    rule = d.TRANSITIONS.get((frm, to))
    expected: str | None = None
    if facturado:
        expected = "GPU_FACTURADO"
    elif rule is None:
        expected = "TRANSICION_INVALIDA"
    elif not roles & rule.roles:
        expected = "ROL_NO_AUTORIZADO"
    if expected is None:
        assert tr(state, to, Actor("me", roles), archivo=LINK, nota="n").to_status is to
    else:
        with pytest.raises(DomainError) as exc:
            tr(state, to, Actor("me", roles), archivo=LINK, nota="n")
        assert exc.value.code == expected


def test_versions_and_etags() -> None:
    d.check_version(3, None)
    d.check_version(3, 3)
    with pytest.raises(DomainError) as exc:
        d.check_version(4, 3)
    assert (code_of(exc), exc.value.status) == ("VERSION_OBSOLETA", 409)
    assert d.parse_etag('W/"3"') == 3
    assert d.parse_etag('"7"') == 7
    assert d.parse_etag("*") is None
    assert d.etag(5) == '"5"'
    with pytest.raises(DomainError) as exc:
        d.parse_etag("abc")
    assert exc.value.status == 412


# ---------------------------------------------------------------- sync on production (C.4.2)


def test_plan_gpu_sync() -> None:
    assert d.plan_gpu_sync(True, None) is SyncAction.CREATE  # G1
    assert d.plan_gpu_sync(True, ExistingGpu(C)) is SyncAction.NOTHING
    assert d.plan_gpu_sync(False, None) is SyncAction.NOTHING
    for s in (P, C, X):  # G9
        assert d.plan_gpu_sync(False, ExistingGpu(s)) is SyncAction.DELETE
        assert d.plan_gpu_sync(False, ExistingGpu(s, facturado=True)) is SyncAction.CONFLICT
    for s in (R, V):  # G10, GP-D05
        assert d.plan_gpu_sync(False, ExistingGpu(s)) is SyncAction.CONFLICT


@given(
    st.booleans(),
    st.none() | st.builds(ExistingGpu, st.sampled_from(list(GpuStatus)), st.booleans()),
)
def test_sync_never_deletes_protected(eligible: bool, gpu: ExistingGpu | None) -> None:
    action = d.plan_gpu_sync(eligible, gpu)
    if action is SyncAction.DELETE:
        assert gpu is not None
        assert not gpu.facturado
        assert gpu.status in d.DELETABLE_STATUSES
    if eligible:
        assert action in {SyncAction.CREATE, SyncAction.NOTHING}


# ---------------------------------------------------------------- production save guards


F2 = dt.date(2025, 3, 2)
F3 = dt.date(2025, 3, 3)
F5 = dt.date(2025, 3, 5)


def test_volume_validation() -> None:
    assert d.validate_volume(Decimal("8")) == Decimal("8.000000")
    for bad in (Decimal("-1"), Decimal("0.0000001"), Decimal("1E+10"), Decimal("NaN")):
        with pytest.raises(DomainError) as exc:
            d.validate_volume(bad)
        assert code_of(exc) == "VOLUMEN_INVALIDO"


def test_plan_creates_only_positive_and_skips_unchanged() -> None:
    k2, k3, k5 = (456, F2, "TE", None), (456, F3, "TE", None), (457, F5, "TE", None)
    plan = d.plan_production_save(
        {k2: Decimal(8), k3: Decimal(0), k5: Decimal(12)},
        {k5: ExistingProduction(790, Decimal("12.000000"))},
        mes_cerrado=False,
    )
    assert [(c.key, c.id, c.volumen) for c in plan.changes] == [(k2, None, Decimal("8.000000"))]
    assert plan.unchanged == 2  # GP-E02: 0 on a new row creates nothing


@pytest.mark.spec("GP-E06")
def test_plan_edit_to_zero_pendiente_allowed_validado_blocked() -> None:
    k5, k2 = (457, F5, "TE", None), (456, F2, "TE", None)
    plan = d.plan_production_save(
        {k5: Decimal(0)},
        {k5: ExistingProduction(790, Decimal(12), ExistingGpu(P))},
        mes_cerrado=False,
    )
    assert plan.changes[0].volumen == 0
    assert plan.changes[0].id == 790
    with pytest.raises(DomainError) as exc:
        d.plan_production_save(
            {k2: Decimal(0), k5: Decimal(0)},
            {
                k2: ExistingProduction(789, Decimal(8), ExistingGpu(V)),
                k5: ExistingProduction(790, Decimal(12), ExistingGpu(P)),
            },
            mes_cerrado=False,
        )
    assert (code_of(exc), exc.value.status) == ("GPU_EN_PROCESO", 409)
    assert exc.value.extensions["producciones"] == [789]
    for gpu in (ExistingGpu(R), ExistingGpu(C, facturado=True)):
        with pytest.raises(DomainError):
            d.plan_production_save(
                {k2: Decimal(3)}, {k2: ExistingProduction(789, Decimal(8), gpu)}, mes_cerrado=False
            )


def test_plan_closed_month_and_day() -> None:
    k2 = (456, F2, "TE", None)
    with pytest.raises(DomainError) as exc:
        d.plan_production_save({k2: Decimal(1)}, {}, mes_cerrado=True)
    assert code_of(exc) == "MES_CERRADO"
    # unchanged values on a closed month/day are fine (nothing written)
    d.plan_production_save(
        {k2: Decimal(1)}, {k2: ExistingProduction(1, Decimal(1))}, mes_cerrado=True
    )
    with pytest.raises(DomainError) as exc:
        d.plan_production_save({k2: Decimal(1)}, {}, mes_cerrado=False, dias_cerrados=[F2])
    assert (code_of(exc), exc.value.extensions["dias"]) == ("DIA_CERRADO", ["2025-03-02"])


# ---------------------------------------------------------------- excedente (C.4.4)


def test_normalize_code_variants() -> None:
    for v in ("C-2.1.1", " C-2.1.1 ", "C-2.1.1.", "C-2.1.1. "):
        assert d.normalize_code(v) == "C-2.1.1"


@pytest.mark.spec("GP-E08")
def test_excedente_flag_over_an_ot_family() -> None:
    aut = d.authorised_volumes([("C-2.1.1", Decimal(80)), ("C-2.1.1.", Decimal(20))])
    assert aut == {"C-2.1.1": Decimal("100.0000")}
    rows = [
        d.VolumeRow(1, "C-2.1.1", dt.date(2025, 2, 10), "TE", Decimal(90)),
        d.VolumeRow(2, "C-2.1.1", dt.date(2025, 3, 1), "TE", Decimal(5)),
        d.VolumeRow(3, "C-2.1.1.", dt.date(2025, 3, 2), "TE", Decimal(8)),
    ]
    flags = d.compute_excedentes(rows, aut)
    assert flags == {1: False, 2: False, 3: True}
    assert d.estatus_volumen([flags[2], flags[3]]) == "BLOQUEADO"
    assert d.estatus_volumen([False]) == "AUTORIZADO"
    # April production entered earlier (higher id irrelevant): chronological, March unchanged
    rows.insert(0, d.VolumeRow(0, "C-2.1.1", dt.date(2025, 4, 1), "TE", Decimal(50)))
    flags = d.compute_excedentes(rows, aut)
    assert flags == {0: True, 1: False, 2: False, 3: True}


def test_excedente_te_before_cma_same_day() -> None:
    aut = {"A": Decimal(5)}
    rows = [
        d.VolumeRow(1, "A", F5, "CMA", Decimal(2)),
        d.VolumeRow(2, "A", F5, "TE", Decimal(4)),
    ]
    assert d.compute_excedentes(rows, aut) == {2: False, 1: True}


@given(
    st.lists(
        st.tuples(
            st.integers(1, 28),
            st.sampled_from(["TE", "CMA"]),
            st.decimals(min_value=0, max_value=1000, places=6),
        ),
        max_size=30,
    ),
    st.decimals(min_value=0, max_value=5000, places=4),
)
def test_excedente_property_monotone(items: list[tuple[int, str, Decimal]], limit: Decimal) -> None:
    rows = [
        d.VolumeRow(i, "X", dt.date(2025, 3, day), tipo, vol)
        for i, (day, tipo, vol) in enumerate(items)
    ]
    flags = d.compute_excedentes(rows, {"X": limit})
    ordered = sorted(rows, key=lambda r: (r.fecha, 0 if r.tipo_tiempo == "TE" else 1, r.id))
    # once the running total passes the limit every later row is excedente
    seen = False
    running = Decimal(0)
    for r in ordered:
        running += r.volumen
        if flags[r.id]:
            seen = True
        elif seen:
            raise AssertionError("non-monotone")
        assert flags[r.id] == (running.quantize(d.Q4) > limit)
    # order of input does not matter
    assert d.compute_excedentes(list(reversed(rows)), {"X": limit}) == flags


# ---------------------------------------------------------------- grid (C.4.3)


def grow(pid: int, prod: int, day: int, tipo: str = "TE", **kw: object) -> d.GridRow:
    base: dict[str, object] = {
        "id_partida_anexo": pid,
        "codigo": "C-2.1.1",
        "descripcion": "Técnico especializado",
        "unidad": "JOR",
        "anexo": "C-2",
        "orden_fila": 1,
        "id_produccion": prod,
        "fecha": dt.date(2025, 3, day),
        "tipo_tiempo": tipo,
        "id_sitio": None,
        "volumen": Decimal(8),
        "id_gpu": None,
        "estatus": None,
        "archivo": None,
    }
    base.update(kw)
    return d.GridRow(**base)  # type: ignore[arg-type]


@pytest.mark.spec("GP-E01")
def test_grid_cell() -> None:
    data = d.build_grid([grow(456, 789, 2, id_gpu=5, estatus=P)])
    assert len(data) == 1
    row = data[0]
    assert row["dia_2"] == [
        {
            "id_produccion": 789,
            "volumen": "8.000000",
            "tipo_tiempo": "TE",
            "estatus_id": 19,
            "estatus_texto": "PENDIENTE",
            "archivos_count": 0,
            "archivo": "",
            "id_gpu": 5,
        }
    ]
    assert all(row[f"dia_{n}"] is None for n in range(1, 32) if n != 2)
    assert {k: row[k] for k in ("id_partida_anexo", "codigo", "anexo", "unidad")} == {
        "id_partida_anexo": 456,
        "codigo": "C-2.1.1",
        "anexo": "C-2",
        "unidad": "JOR",
    }


def test_grid_no_gpu_shows_pendiente_and_link_count() -> None:
    cell = d.grid_cell(grow(1, 2, 3))
    assert (cell["estatus_id"], cell["estatus_texto"], "id_gpu" in cell) == (19, "PENDIENTE", False)
    cell = d.grid_cell(grow(1, 2, 3, id_gpu=9, estatus=C, archivo=LINK))
    assert (cell["estatus_id"], cell["archivos_count"], cell["archivo"]) == (20, 1, LINK)


@pytest.mark.spec("GP-E09")
def test_grid_two_time_types() -> None:  # GP-D07
    data = d.build_grid(
        [
            grow(456, 11, 5, "CMA", volumen=Decimal(2)),
            grow(456, 10, 5, "TE", volumen=Decimal(4)),
        ]
    )
    cells = data[0]["dia_5"]
    assert [c["tipo_tiempo"] for c in cells] == ["TE", "CMA"]
    assert [c["volumen"] for c in cells] == ["4.000000", "2.000000"]


def test_grid_rows_ordered_by_orden_fila() -> None:
    data = d.build_grid([grow(2, 1, 1, orden_fila=5), grow(1, 2, 1, orden_fila=1)])
    assert [r["id_partida_anexo"] for r in data] == [1, 2]


@pytest.mark.spec("GP-E10")
def test_month_validation() -> None:
    with pytest.raises(DomainError) as exc:
        d.validate_month(13, 2025)
    assert (code_of(exc), exc.value.status, exc.value.field) == ("MES_INVALIDO", 400, "mes")
    with pytest.raises(DomainError):
        d.validate_month(0, 2025)
    assert d.days_in_month(2, 2024) == 29
    assert d.days_in_month(3, 2025) == 31


def test_business_date_mexico_city() -> None:
    late_utc = dt.datetime(2025, 3, 2, 3, 0, tzinfo=dt.UTC)  # 21:00 on the 1st in CDMX
    assert d.business_date(late_utc) == dt.date(2025, 3, 1)
    with pytest.raises(ValueError, match="naive"):
        d.business_date(dt.datetime(2025, 3, 2))


# ---------------------------------------------------------------- billing (C.4.6)


def cand(**kw: object) -> d.BillingCandidate:
    base: dict[str, object] = {
        "id_produccion": 789,
        "anexo": "C-2",
        "importacion_activa": True,
        "volumen": Decimal(8),
        "es_excedente": False,
        "excedente_autorizado": False,
        "gpu": ExistingGpu(V),
    }
    base.update(kw)
    return d.BillingCandidate(**base)  # type: ignore[arg-type]


@pytest.mark.spec("GP-E07", "GP-E08")
def test_billable_rules() -> None:
    d.check_billable(cand())
    with pytest.raises(DomainError) as exc:
        d.check_billable(cand(gpu=ExistingGpu(C)))
    assert (code_of(exc), exc.value.status) == ("GPU_NO_VALIDADO", 422)
    with pytest.raises(DomainError) as exc:
        d.check_billable(cand(gpu=None))
    assert code_of(exc) == "GPU_NO_VALIDADO"
    with pytest.raises(DomainError) as exc:
        d.check_billable(cand(es_excedente=True))
    assert code_of(exc) == "EXCEDENTE_NO_AUTORIZADO"  # DECIDE-C4
    d.check_billable(cand(es_excedente=True, excedente_autorizado=True))
    with pytest.raises(DomainError) as exc:
        d.check_billable(cand(gpu=ExistingGpu(V, facturado=True)))
    assert code_of(exc) == "PRODUCCION_YA_ESTIMADA"
    # non-GPU annex production is billable without GPU
    d.check_billable(cand(anexo="C-1", gpu=None))
    assert d.billing_skip_reason(cand(gpu=ExistingGpu(P))) == "GPU_NO_VALIDADO"
    assert d.billing_skip_reason(cand()) is None


@pytest.mark.spec("DECIDE-C8")
def test_volumen_actual_round_half_up() -> None:
    assert d.volumen_actual(Decimal("8.000000")) == Decimal("8.00")
    assert d.volumen_actual(Decimal("2.345000")) == Decimal("2.35")
    assert d.volumen_actual(Decimal("2.344999")) == Decimal("2.34")
    assert d.volumen_actual(Decimal("0.005000")) == Decimal("0.01")


def test_volumen_estimado_bounds() -> None:
    assert d.validate_volumen_estimado(None, Decimal("8.00")) == Decimal("8.00")
    assert d.validate_volumen_estimado(Decimal("7.50"), Decimal("8.00")) == Decimal("7.50")
    for bad in (Decimal("8.01"), Decimal("-1"), Decimal("1.005")):
        with pytest.raises(DomainError) as exc:
            d.validate_volumen_estimado(bad, Decimal("8.00"))
        assert code_of(exc) == "VOLUMEN_ESTIMADO_INVALIDO"


def test_estimate_totals() -> None:
    totals = d.estimate_totals(
        [
            d.EstimateLine(
                Decimal("8.00"), Decimal("8.00"), Decimal("1234.5678"), Decimal("61.7284")
            ),
            d.EstimateLine(Decimal("2.35"), Decimal("2.35"), Decimal("0.3333"), Decimal(0)),
        ]
    )
    assert totals.total_volumen_producido == Decimal("10.35")
    assert totals.total_volumen_estimado == Decimal("10.35")
    # 8 × 1234.5678 = 9876.5424 → 9876.54 ; 2.35 × 0.3333 = 0.783255 → 0.78
    assert totals.total_importe_mn == Decimal("9877.32")
    assert totals.total_importe_usd == Decimal("493.83")


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=10**6, places=2),
            st.decimals(min_value=0, max_value=10**4, places=4),
        ),
        max_size=20,
    )
)
def test_totals_property(lines: list[tuple[Decimal, Decimal]]) -> None:
    est = [d.EstimateLine(v, v, p, p) for v, p in lines]
    totals = d.estimate_totals(est)
    assert totals.total_volumen_estimado == sum((v for v, _ in lines), Decimal("0.00"))
    expected = sum((d.money(v * p) for v, p in lines), Decimal("0.00"))
    assert totals.total_importe_mn == expected == totals.total_importe_usd
    assert totals.total_importe_mn.as_tuple().exponent == -2


def test_period() -> None:
    d.validate_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    with pytest.raises(DomainError) as exc:
        d.validate_period(dt.date(2025, 3, 31), dt.date(2025, 3, 1))
    assert code_of(exc) == "PERIODO_INVALIDO"


# ---------------------------------------------------------------- completeness


def test_completeness_figures() -> None:
    rep = d.completeness([("C-2", V), ("C-2", None), (" c-2", X), ("C-3", V)])
    assert rep["total"] == 4
    assert rep["por_estatus"]["VALIDADO"] == {"cantidad": 2, "porcentaje": Decimal("50.00")}
    assert rep["por_estatus"]["PENDIENTE"]["cantidad"] == 1
    assert rep["por_anexo"]["C-2"]["por_estatus"]["VALIDADO"]["porcentaje"] == Decimal("33.33")
    assert rep["por_anexo"]["C-3"]["total"] == 1
    assert d.completeness([])["total"] == 0


@given(st.lists(st.sampled_from([None, *GpuStatus]), max_size=50))
def test_completeness_property(statuses: list[GpuStatus | None]) -> None:
    rep = d.completeness([("C-2", s) for s in statuses])
    assert sum(v["cantidad"] for v in rep["por_estatus"].values()) == len(statuses)
    if statuses:
        total_pct = sum(v["porcentaje"] for v in rep["por_estatus"].values())
        assert abs(total_pct - 100) <= Decimal("0.05")


def test_error_catalogue_complete() -> None:
    assert set(d.ERROR_STATUS) == set(d.ERROR_TITLES)
    err = DomainError("GPU_FACTURADO", field="x", extra=1)
    assert (err.status, err.field, err.extensions) == (409, "x", {"extra": 1})
    assert d.sort_ids([3, 1, 3, 2]) == [1, 2, 3]


@pytest.mark.spec("DECIDE-C7")
def test_review_checklist() -> None:
    state = GpuState(R, archivo=LINK, usuario_carga="ana", anexo="C-2")
    out = tr(state, V, REVISOR, checklist={"hoja_asistencia": True, "epp_visible": True})
    assert out.checklist == {"hoja_asistencia": True, "epp_visible": True}
    with pytest.raises(DomainError) as exc:
        tr(state, V, REVISOR, checklist={"lectura_horometro": True})  # a C-3 item
    assert (code_of(exc), exc.value.field) == ("CHECKLIST_INVALIDO", "checklist")
    # not a review action: the checklist is not stored
    assert tr(GpuState(P, anexo="C-2"), C, RESIDENTE, archivo=LINK, checklist={}).checklist is None


# --------------------------------------------------------------------------------------------
# Daily reports and the production grid (§C.2.2, §C.2.5, §C.5; GP-D02, GP-D14)
# --------------------------------------------------------------------------------------------

D1 = dt.date


def test_ot_period_prefers_real_and_extends_by_reprogramaciones() -> None:
    assert d.ot_period(D1(2025, 1, 5), D1(2025, 1, 1), None, D1(2025, 2, 28)) == (
        D1(2025, 1, 5),
        D1(2025, 2, 28),
    )
    assert d.ot_period(None, D1(2025, 1, 1), D1(2025, 2, 10), D1(2025, 2, 28))[1] == D1(2025, 2, 10)
    ext = d.ot_period(
        None,
        D1(2025, 1, 1),
        None,
        D1(2025, 2, 28),
        [(None, D1(2025, 3, 10)), (D1(2025, 3, 20), D1(2025, 2, 1)), (None, None)],
    )
    assert ext == (D1(2025, 1, 1), D1(2025, 3, 20))
    assert d.ot_period(None, None, None, None) == (None, None)


@pytest.mark.parametrize(
    ("inicio", "fin", "shown"),
    [
        (D1(2025, 3, 31), None, True),  # starts on the last day, still running
        (D1(2025, 4, 1), None, False),
        (D1(2025, 1, 1), D1(2025, 3, 1), True),  # ends on the first day
        (D1(2025, 1, 1), D1(2025, 2, 28), False),
        (None, D1(2025, 3, 15), False),  # no start: cannot be placed
    ],
)
def test_ot_valid_in_month(inicio: dt.date | None, fin: dt.date | None, shown: bool) -> None:
    assert d.ot_valid_in_month(inicio, fin, 3, 2025) is shown


def test_site_column_by_frente_covers_every_frente() -> None:  # GP-D20: full map
    assert dict(d.SITE_COLUMN_BY_FRENTE) == {
        1: "id_patio",
        3: "id_patio",
        2: "id_embarcacion",
        6: "id_embarcacion",
        4: "id_plataforma",
        7: "id_plataforma",
        5: "id_intercom",
    }


OPERATIVO = d.DailyStatus("OPERATIVO", "Operativo", False)
CERRADO = d.DailyStatus("CERRADO", "Cerrado", True)
DAILY = {s.codigo: s for s in (OPERATIVO, CERRADO)}


def test_resolve_daily_status() -> None:
    cat = list(DAILY.values())
    assert d.resolve_daily_status(" operativo ", cat, field="f") == OPERATIVO
    assert d.resolve_daily_status("CERRADO", cat, field="f") == CERRADO
    assert d.resolve_daily_status(None, cat, field="f") is None
    assert d.resolve_daily_status("  ", cat, field="f") is None


@pytest.mark.parametrize("gpu_status", ["Validado", "PENDIENTE", "En Revisión", "17", "1"])
def test_gpu_statuses_are_not_daily_statuses(gpu_status: str) -> None:  # GP-D02
    with pytest.raises(DomainError) as exc:
        d.resolve_daily_status(gpu_status, list(DAILY.values()), field="reportes[0].valores[3]")
    assert (exc.value.code, exc.value.status, exc.value.field) == (
        "ESTATUS_DIARIO_INVALIDO",
        422,
        "reportes[0].valores[3]",
    )


def test_plan_daily_statuses_skips_unchanged_and_deletes_cleared() -> None:  # GP-D14
    existing = {D1(2025, 3, 1): "OPERATIVO", D1(2025, 3, 2): "OPERATIVO"}
    requested: dict[dt.date, d.DailyStatus | None] = {
        D1(2025, 3, 1): OPERATIVO,  # unchanged
        D1(2025, 3, 2): None,  # cleared → delete
        D1(2025, 3, 3): None,  # nothing to clear
        D1(2025, 3, 4): OPERATIVO,  # new
    }
    changes = d.plan_daily_statuses(existing, requested, DAILY, may_close=False, field="f")
    assert changes == [
        d.DayChange(D1(2025, 3, 2), None),
        d.DayChange(D1(2025, 3, 4), OPERATIVO),
    ]


@pytest.mark.parametrize(
    ("current", "new"),
    [(None, CERRADO), ("OPERATIVO", CERRADO), ("CERRADO", OPERATIVO), ("CERRADO", None)],
)
def test_closing_or_lifting_a_day_needs_a_supervisor(
    current: str | None, new: d.DailyStatus | None
) -> None:
    day = D1(2025, 3, 2)
    existing = {day: current} if current else {}
    with pytest.raises(DomainError) as exc:
        d.plan_daily_statuses(existing, {day: new}, DAILY, may_close=False, field="f")
    assert (exc.value.code, exc.value.status) == ("ROL_NO_AUTORIZADO", 403)
    assert d.plan_daily_statuses(existing, {day: new}, DAILY, may_close=True, field="f") == [
        d.DayChange(day, new)
    ]
    unchanged = {day: DAILY[current]} if current else {}
    assert d.plan_daily_statuses(existing, unchanged, DAILY, may_close=False, field="f") == []


def test_production_grid_consolidates_and_flags() -> None:
    lines = [
        d.PlanLine(7, " c-2", "C-2.1.1.", "Técnico", "JOR", Decimal("20")),
        d.PlanLine(5, "C-2", "C-2.1.1", "Técnico", "JOR", Decimal("80")),
        d.PlanLine(6, "C-2", "C-2.1.1", "Otro concepto", "JOR", Decimal("1")),
    ]
    productions = [
        (5, D1(2025, 3, 2), "TE", Decimal("8"), False),
        (7, D1(2025, 3, 2), "TE", Decimal("1.5"), True),
        (7, D1(2025, 3, 2), "CMA", Decimal("2"), False),
        (5, D1(2025, 3, 3), "CMA", Decimal("4"), True),  # excedente of the other time type
        (5, D1(2025, 4, 2), "TE", Decimal("50"), True),  # other month: ignored
        (99, D1(2025, 3, 2), "TE", Decimal("9"), True),  # not a line of the family
    ]
    plan = [(7, D1(2025, 3, 2), Decimal("3")), (5, D1(2025, 3, 5), Decimal("2"))]
    rows = d.production_grid(
        lines, productions, plan, mes=3, anio=2025, tipo_tiempo="TE", archivo=None
    )
    assert [(r["id_partida_imp"], r["ids_partida"]) for r in rows] == [(5, [5, 7]), (6, [6])]
    row = rows[0]
    assert (row["codigo"], row["anexo"], row["vol_total_proyectado"]) == (
        "C-2.1.1",
        "C-2",
        "100.000000",
    )
    assert row["dia2"] == {
        "valor": "9.500000",
        "programado": "3.000000",
        "es_excedente": True,
        "te_dia": "9.500000",
        "cma_dia": "2.000000",
    }
    assert row["dia3"]["es_excedente"] is False  # only the requested type's flag counts
    assert row["dia5"] == {
        "valor": None,
        "programado": "2.000000",
        "es_excedente": False,
        "te_dia": "0.000000",
        "cma_dia": "0.000000",
    }
    assert (row["acumulado_mes"], row["acumulado_programado"]) == ("9.500000", "5.000000")
    assert row["estatus_gpu"] == row["estatus_volumen"] == "BLOQUEADO"
    assert rows[1]["estatus_gpu"] == "AUTORIZADO"
    assert [k for k in row if k.startswith("dia")] == [f"dia{n}" for n in range(1, 32)]
    cma = d.production_grid(
        lines, productions, plan, mes=3, anio=2025, tipo_tiempo="CMA", archivo="x"
    )[0]
    assert (cma["dia3"]["valor"], cma["dia3"]["es_excedente"], cma["acumulado_mes"]) == (
        "4.000000",
        True,
        "6.000000",
    )
    assert cma["archivo"] == "x"
    assert cma["estatus_gpu"] == "BLOQUEADO"
