{{/*
Names, labels and the derived values every template shares. Derived numbers (the termination grace
period) and the server's config file are computed here once, so the Deployment and the tests that
read it cannot disagree.
*/}}

{{/* The chart name, overridable. */}}
{{- define "postgres-mcp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource name: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "postgres-mcp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "postgres-mcp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource: the chart's, then commonLabels (which cannot replace the chart's). */}}
{{- define "postgres-mcp.labels" -}}
{{- $own := dict
  "helm.sh/chart" (include "postgres-mcp.chart" .)
  "app.kubernetes.io/name" (include "postgres-mcp.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" ((.Values.image.tag | default .Chart.AppVersion) | trunc 63)
  "app.kubernetes.io/managed-by" .Release.Service }}
{{- toYaml (merge $own (.Values.commonLabels | default dict)) }}
{{- end }}

{{/* Labels that select the server pods (immutable in a Deployment: never add to them). */}}
{{- define "postgres-mcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postgres-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "postgres-mcp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "postgres-mcp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the auth files: the user's, or the one this chart creates. */}}
{{- define "postgres-mcp.authSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "postgres-mcp.fullname" .)) }}
{{- end }}

{{/* repository@digest when image.digest is set (immutable), else repository:tag. */}}
{{- define "postgres-mcp.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
"true" when the PodDisruptionBudget is rendered: enabled, and at least two instances always run (the
fixed count, or the HPA's minimum). With one instance a PDB either blocks every node drain
(minAvailable 1) or protects nothing.
*/}}
{{- define "postgres-mcp.pdbEnabled" -}}
{{- $fewest := ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled | int }}
{{- if and .Values.podDisruptionBudget.enabled (ge $fewest 2) }}true{{ end }}
{{- end }}

{{/*
A server duration (`500ms`, `5s`, `2m`, `12h`, `90d`: a whole number and one unit, as the server
parses it) in whole seconds, rounded up.
*/}}
{{- define "postgres-mcp.seconds" -}}
{{- $text := toString . }}
{{- $number := regexFind "^[0-9]+" $text }}
{{- $unit := trimPrefix $number $text }}
{{- $n := $number | int64 }}
{{- if eq $unit "ms" }}{{ div (add $n 999) 1000 }}
{{- else if eq $unit "s" }}{{ $n }}
{{- else if eq $unit "m" }}{{ mul $n 60 }}
{{- else if eq $unit "h" }}{{ mul $n 3600 }}
{{- else if eq $unit "d" }}{{ mul $n 86400 }}
{{- else }}{{ fail (printf "cannot read the duration %q (use a whole number and ms, s, m, h or d)" $text) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then the server's drain (503 on /health, still
serving), then its grace for in-flight requests, then a margin. Kubernetes must not SIGKILL a pod
that is still draining.
*/}}
{{- define "postgres-mcp.terminationGracePeriodSeconds" -}}
{{- $drain := include "postgres-mcp.seconds" .Values.config.shutdown.drain_delay | int64 }}
{{- $grace := include "postgres-mcp.seconds" .Values.config.shutdown.grace | int64 }}
{{- add .Values.termination.preStopSleepSeconds $drain $grace .Values.termination.marginSeconds }}
{{- end }}

{{/* The Service's DNS names: in-cluster clients send them as Host, so the server must accept them. */}}
{{- define "postgres-mcp.serviceHosts" -}}
{{- $name := include "postgres-mcp.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) | toJson }}
{{- end }}

{{/* Where kb.db is served from, or "" without a knowledge base. */}}
{{- define "postgres-mcp.kbPath" -}}
{{- if ne .Values.kb.source "none" }}
{{- printf "/app/data/%s" .Values.kb.file }}
{{- end }}
{{- end }}

{{/*
The server's config.yaml: the user's `config` plus what the chart decides (listen address, mounted
file paths, allowed hosts). instance_id is not here: PGMCP_INSTANCE_ID comes from the pod name.
*/}}
{{- define "postgres-mcp.serverConfig" -}}
{{- $config := deepCopy .Values.config }}
{{- $_ := set $config "listen" "0.0.0.0:8080" }}
{{- if not $config.public_url }}
{{- $_ := unset $config "public_url" }}
{{- end }}
{{- $auth := $config.auth }}
{{- $_ := set $auth "tokens_file" (printf "/app/config/%s" .Values.auth.keys.tokens) }}
{{- if .Values.auth.login.enabled }}
{{- $_ := set $auth "users_file" (printf "/app/config/%s" .Values.auth.keys.users) }}
{{- $_ := set $auth "session_secret_file" (printf "/app/config/%s" .Values.auth.keys.sessionKey) }}
{{- end }}
{{- $kbPath := include "postgres-mcp.kbPath" . }}
{{- if $kbPath }}
{{- $_ := set $config.kb "path" $kbPath }}
{{- end }}
{{- $database := $config.database | default dict }}
{{- if .Values.database.existingSecret }}
{{- $_ := set $database "url_file" "/app/secrets/database/url" }}
{{- end }}
{{- if $database }}
{{- $_ := set $config "database" $database }}
{{- else }}
{{- $_ := unset $config "database" }}
{{- end }}
{{- $hosts := concat $config.http.allowed_hosts (include "postgres-mcp.serviceHosts" . | fromJsonArray) }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- $_ := set $config.http "allowed_hosts" ($hosts | uniq) }}
{{- toYaml $config }}
{{- end }}

{{/* "true" when the pod runs the sync init container and sidecar (kb.source or auth.source sync), else "". */}}
{{- define "postgres-mcp.syncEnabled" -}}
{{- if or (eq .Values.kb.source "sync") (eq .Values.auth.source "sync") }}true{{ end }}
{{- end }}

{{/*
The sync manifest (/app/etc/sync.yaml): kb.sync.items for kb.source=sync, then the auth files for
auth.source=sync (kind given, so the file names in auth.keys need not follow the naming the sync
command infers kinds from).
*/}}
{{- define "postgres-mcp.syncManifest" -}}
{{- $items := list }}
{{- if eq .Values.kb.source "sync" }}
{{- range .Values.kb.sync.items }}
{{- $item := dict "source" .source "dest" (.dest | default (printf "/app/data/%s" $.Values.kb.file)) }}
{{- if .sha256 }}
{{- $_ := set $item "sha256" .sha256 }}
{{- end }}
{{- $items = append $items $item }}
{{- end }}
{{- end }}
{{- if eq .Values.auth.source "sync" }}
{{- $auth := .Values.auth }}
{{- $files := list (list $auth.sync.tokens $auth.keys.tokens "tokens") }}
{{- if $auth.login.enabled }}
{{- $files = append $files (list $auth.sync.users $auth.keys.users "users") }}
{{- $files = append $files (list $auth.sync.sessionKey $auth.keys.sessionKey "session-key") }}
{{- end }}
{{- range $files }}
{{- $item := dict "source" (index . 0) "dest" (printf "/app/config/%s" (index . 1)) "kind" (index . 2) }}
{{- if and $auth.sync.allowEmpty (ne (index . 2) "session-key") }}
{{- $_ := set $item "allow_empty" true }}
{{- end }}
{{- $items = append $items $item }}
{{- end }}
{{- end }}
{{- toYaml (dict "items" $items) }}
{{- end }}

{{/*
A sync container's volume mounts: the manifest, the directories it writes (kb.db's /app/data, the
auth files' /app/config) and /tmp (SQLite's scratch space for the kb.db check).
*/}}
{{- define "postgres-mcp.syncMounts" -}}
- name: etc
  mountPath: /app/etc
  readOnly: true
{{- if eq .Values.kb.source "sync" }}
- name: data
  mountPath: /app/data
{{- end }}
{{- if eq .Values.auth.source "sync" }}
- name: auth
  mountPath: /app/config
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Security context of every container: non-root, read-only root, no capabilities. */}}
{{- define "postgres-mcp.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Environment of the sync containers: AWS region, endpoint, credentials. */}}
{{- define "postgres-mcp.syncEnv" -}}
{{- with .Values.sync.aws }}
{{- if or .region .endpointUrl }}
env:
  {{- if .region }}
  - name: AWS_REGION
    value: {{ .region | quote }}
  {{- end }}
  {{- if .endpointUrl }}
  - name: AWS_ENDPOINT_URL
    value: {{ .endpointUrl | quote }}
  {{- end }}
{{- end }}
{{- if .credentialsSecret }}
envFrom:
  - secretRef:
      name: {{ .credentialsSecret }}
{{- end }}
{{- end }}
{{- end }}

{{/* Checks across values that a JSON schema cannot express clearly. */}}
{{- define "postgres-mcp.validate" -}}
{{- if eq .Values.auth.source "sync" }}
{{- if .Values.auth.existingSecret }}
{{- fail "auth.existingSecret is for auth.source secret: with auth.source sync the auth files come from auth.sync (object storage) only; set one or the other" }}
{{- end }}
{{- if and .Values.auth.login.enabled (not (and .Values.auth.sync.users .Values.auth.sync.sessionKey)) }}
{{- fail "auth.login.enabled with auth.source sync needs auth.sync.users and auth.sync.sessionKey (the objects of users.yaml and the session key)" }}
{{- end }}
{{- else if and .Values.auth.login.enabled (not .Values.auth.existingSecret) (not .Values.auth.sessionKey) }}
{{- fail "auth.login.enabled needs auth.sessionKey (postgres-mcp session-key create) or auth.existingSecret" }}
{{- end }}
{{- $oauth := dig "oauth" "mode" "off" .Values.config.auth }}
{{- if and (ne $oauth "off") (not .Values.config.public_url) }}
{{- fail "config.auth.oauth.mode needs config.public_url (the URL clients use: the issuer and the resource are named after it)" }}
{{- end }}
{{- if and (eq $oauth "builtin") (not .Values.auth.login.enabled) }}
{{- fail "config.auth.oauth.mode builtin needs auth.login.enabled (users.yaml and the session key sign users in and seal every OAuth value)" }}
{{- end }}
{{- if and (eq $oauth "external") (not (dig "oauth" "external" "issuer" "" .Values.config.auth)) }}
{{- fail "config.auth.oauth.mode external needs config.auth.oauth.external.issuer (the IdP's issuer URL)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be >= autoscaling.minReplicas" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not (dig "requests" "cpu" "" .Values.resources)) }}
{{- fail "autoscaling.enabled needs resources.requests.cpu (the CPU target is a percentage of it)" }}
{{- end }}
{{- /* Behind the ingress every client has the controller's address: without trusting it, one client's
       bad tokens or wrong passwords would lock every client's logins out (valid tokens are still served). */}}
{{- if and .Values.ingress.enabled (not .Values.ingress.tls) (not .Values.ingress.allowWithoutTLS) }}
{{- fail "ingress.enabled without ingress.tls would send bearer tokens and passwords in clear text: set ingress.tls ([{secretName: mcp-tls, hosts: [mcp.example.com]}]), or ingress.allowWithoutTLS: true when TLS ends in front of the ingress controller" }}
{{- end }}
{{- /* The instance-internal routes (/metrics, /health/details: counts, errors, versions) share port 8080
       with the public ones, so only the Ingress' paths keep them private: no path may cover them. */}}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- range .paths }}
{{- $path := .path }}
{{- $pathType := .pathType }}
{{- range list "/metrics" "/health/details" }}
{{- $covered := or (eq $path .) (and (ne $pathType "Exact") (or (eq $path "/") (hasPrefix (printf "%s/" (trimSuffix "/" $path)) .) (and (eq $pathType "ImplementationSpecific") (hasPrefix $path .)))) }}
{{- if $covered }}
{{- fail (printf "ingress path %q (%s) would expose %s, which is internal (read it on the pod: kubectl port-forward); route the public paths only: /mcp (Prefix), /api/login and /health (Exact)" $path $pathType .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.networkPolicy }}
{{- if and .enabled .egress.restrict }}
{{- $reach := "or give a rule in networkPolicy.egress.extra (a podSelector for an in-cluster one)" }}
{{- if and $.Values.database.existingSecret (not .egress.database.cidrs) (not .egress.extra) }}
{{- fail (printf "networkPolicy.egress.restrict with database.existingSecret: the pods could not reach PostgreSQL; set networkPolicy.egress.database.cidrs, %s" $reach) }}
{{- end }}
{{- if and (or (has $.Values.kb.source (list "download" "sync")) (eq $.Values.auth.source "sync")) (not .egress.objectStorage.cidrs) (not .egress.extra) }}
{{- fail (printf "networkPolicy.egress.restrict with kb.source %s / auth.source %s: the pods could not reach the object store or download host; set networkPolicy.egress.objectStorage.cidrs (S3: [\"0.0.0.0/0\"] or your VPC endpoint's subnet), %s" $.Values.kb.source $.Values.auth.source $reach) }}
{{- end }}
{{- if and $.Values.config.trace.otlp_endpoint (not .egress.extra) }}
{{- fail (printf "networkPolicy.egress.restrict with config.trace.otlp_endpoint: the pods could not reach the OTLP collector; %s" (trimPrefix "or " $reach)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.config.auth.trusted_proxies) }}
{{- fail "ingress.enabled needs config.auth.trusted_proxies: set it to your ingress controller's pod CIDR (the cluster's pod network, e.g. [\"10.244.0.0/16\"]; the node CIDR if the controller runs with hostNetwork), so the server sees each client's address in X-Forwarded-For and the failed-auth limiter does not put every client behind the ingress in one bucket" }}
{{- end }}
{{- end }}
