-- Run once by the postgres image on an empty volume (docker-compose.yml mounts it into
-- /docker-entrypoint-initdb.d/). One database per service: each owns its data.
CREATE DATABASE evidence;
CREATE DATABASE sales;
CREATE DATABASE orders;
