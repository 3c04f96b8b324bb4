{{/* Names */}}
{{- define "nexo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nexo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<app>" for dict (root, app) */}}
{{- define "nexo.appName" -}}
{{- printf "%s-%s" (include "nexo.fullname" .root) .app | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nexo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "nexo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nexo
{{- end -}}

{{/* selector labels for dict (root, app) */}}
{{- define "nexo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nexo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .app }}
{{- end -}}

{{- define "nexo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "nexo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "nexo.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag -}}
{{- printf "%s/%s%s:%s" .root.Values.image.registry .root.Values.image.prefix .app $tag -}}
{{- end -}}

{{- define "nexo.secretName" -}}
{{- default (printf "%s-secrets" (include "nexo.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Kafka bootstrap servers */}}
{{- define "nexo.kafkaBootstrap" -}}
{{- if eq .Values.kafka.mode "strimzi" -}}
{{- $s := .Values.kafka.strimzi -}}
{{- printf "%s-kafka-bootstrap.%s:%v" $s.cluster (default .Release.Namespace $s.namespace) $s.listenerPort -}}
{{- else if eq .Values.kafka.mode "external" -}}
{{- required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers -}}
{{- else -}}
{{- fail (printf "kafka.mode must be external or strimzi (got %q)" .Values.kafka.mode) -}}
{{- end -}}
{{- end -}}

{{/* PostgreSQL host, user, password secret */}}
{{- define "nexo.pgHost" -}}
{{- if eq .Values.postgresql.mode "cloudnativepg" -}}
{{- printf "%s-rw" .Values.postgresql.cloudnativepg.cluster -}}
{{- else if eq .Values.postgresql.mode "external" -}}
{{- required "postgresql.host is required" .Values.postgresql.host -}}
{{- else -}}
{{- fail (printf "postgresql.mode must be external or cloudnativepg (got %q)" .Values.postgresql.mode) -}}
{{- end -}}
{{- end -}}

{{- define "nexo.pgPasswordSecretName" -}}
{{- if .Values.postgresql.passwordSecret.name -}}
{{- .Values.postgresql.passwordSecret.name -}}
{{- else if eq .Values.postgresql.mode "cloudnativepg" -}}
{{- printf "%s-app" .Values.postgresql.cloudnativepg.cluster -}}
{{- else -}}
{{- include "nexo.secretName" . -}}
{{- end -}}
{{- end -}}

{{- define "nexo.pgPasswordSecretKey" -}}
{{- if .Values.postgresql.passwordSecret.key -}}
{{- .Values.postgresql.passwordSecret.key -}}
{{- else if eq .Values.postgresql.mode "cloudnativepg" -}}
password
{{- else -}}
POSTGRES_PASSWORD
{{- end -}}
{{- end -}}

{{/* The database URL of a service, for dict (root, app); the password comes from PGPASSWORD,
which asyncpg reads when the URL has none (no URL-encoding of secrets). */}}
{{- define "nexo.databaseUrl" -}}
{{- $pg := .root.Values.postgresql -}}
{{- printf "postgresql+asyncpg://%s@%s:%v/%s" $pg.user (include "nexo.pgHost" .root) $pg.port (get $pg.databases .app) -}}
{{- end -}}

{{- define "nexo.migrationsHook" -}}
{{- if .Values.migrations.hook -}}
{{- .Values.migrations.hook -}}
{{- else if and (eq .Values.postgresql.mode "cloudnativepg") .Values.postgresql.cloudnativepg.createCluster -}}
post-install,pre-upgrade
{{- else -}}
pre-install,pre-upgrade
{{- end -}}
{{- end -}}

{{/* Env entries from secrets, for dict (root, app, prefix) */}}
{{- define "nexo.secretEnv" -}}
{{- $root := .root -}}
{{- if eq $root.Values.jwt.algorithm "HS256" }}
- name: {{ .prefix }}JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "nexo.secretName" $root }}
      key: JWT_SECRET
{{- end }}
{{- if ne .app "gateway" }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nexo.pgPasswordSecretName" $root }}
      key: {{ include "nexo.pgPasswordSecretKey" $root }}
{{- end }}
{{- end -}}

{{/* Volumes shared by every pod: writable /tmp and ./var on a read-only root */}}
{{- define "nexo.volumes" -}}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
- name: var
  emptyDir: {sizeLimit: 64Mi}
{{- end -}}

{{- define "nexo.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: var
  mountPath: /app/var
{{- end -}}

{{/* Tracing: whether the in-chart Jaeger runs ("true" or empty) */}}
{{- define "nexo.jaegerEnabled" -}}
{{- if and .Values.tracing.enabled .Values.tracing.jaeger.enabled -}}true{{- end -}}
{{- end -}}

{{/* Tracing: the OTLP/HTTP endpoint every app exports to */}}
{{- define "nexo.otlpEndpoint" -}}
{{- if .Values.tracing.endpoint -}}
{{- .Values.tracing.endpoint -}}
{{- else if include "nexo.jaegerEnabled" . -}}
{{- printf "http://%s:4318" (include "nexo.appName" (dict "root" . "app" "jaeger")) -}}
{{- else -}}
{{- fail "tracing.enabled needs tracing.endpoint (an external collector) or tracing.jaeger.enabled" -}}
{{- end -}}
{{- end -}}

{{/* Tracing: the Jaeger query API of the /ops trace view (may be empty) */}}
{{- define "nexo.tracesQueryUrl" -}}
{{- if .Values.tracing.queryUrl -}}
{{- .Values.tracing.queryUrl -}}
{{- else if include "nexo.jaegerEnabled" . -}}
{{- printf "http://%s:16686" (include "nexo.appName" (dict "root" . "app" "jaeger")) -}}
{{- end -}}
{{- end -}}

{{/* Tracing: the sampled share of traces, checked to lie in [0, 1] */}}
{{- define "nexo.sampleRatio" -}}
{{- $r := .Values.tracing.sampleRatio | toString -}}
{{- if not (regexMatch "^(0(\\.[0-9]+)?|1(\\.0+)?)$" $r) -}}
{{- fail (printf "tracing.sampleRatio must be a number from 0 to 1 (got %q)" $r) -}}
{{- end -}}
{{- $r -}}
{{- end -}}
