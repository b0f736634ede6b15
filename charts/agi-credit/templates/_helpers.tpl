{{/*
Names, labels and the small decisions the templates share.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "agi-credit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* `<release>-<chart>` (or the release name when it holds the chart name), or fullnameOverride. */}}
{{- define "agi-credit.fullname" -}}
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

{{/* The prefix of derived names (`-train-<hash>`, `-retrain`, `-predictor`, `-metrics`):
short enough that every derived name stays a valid label value (<= 63) and a CronJob name
(<= 52). */}}
{{- define "agi-credit.shortname" -}}
{{- include "agi-credit.fullname" . | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "agi-credit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (Deployment selectors are immutable). */}}
{{- define "agi-credit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agi-credit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The standard labels of every object. */}}
{{- define "agi-credit.labels" -}}
helm.sh/chart: {{ include "agi-credit.chart" . }}
{{ include "agi-credit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agi-credit
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: `include "agi-credit.componentLabels" (list $ "predictor")`. */}}
{{- define "agi-credit.componentLabels" -}}
{{ include "agi-credit.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Selector labels of one component. */}}
{{- define "agi-credit.componentSelectorLabels" -}}
{{ include "agi-credit.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* commonAnnotations merged with an object's own: (list $ .Values.x.annotations). */}}
{{/* Renders "\n  annotations: ..." at metadata level, or nothing. */}}
{{- define "agi-credit.annotations" -}}
{{- $all := merge (dict) (default (dict) (index . 1)) ((index . 0).Values.commonAnnotations) -}}
{{- with $all }}
{{- dict "annotations" . | toYaml | nindent 2 }}
{{- end }}
{{- end -}}

{{/* `[registry/]repository[:tag][@digest]`: (list $ .Values.image.predictor). The tag
defaults to image.tag, then to the chart's appVersion. */}}
{{- define "agi-credit.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $ref := $image.repository -}}
{{- with $root.Values.image.registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" .) $ref }}{{ end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $ref $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (coalesce $image.tag $root.Values.image.tag $root.Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* "imagePullSecrets: [...]", or nothing: (list $ indent). */}}
{{- define "agi-credit.imagePullSecrets" -}}
{{- $secrets := list -}}
{{- range (index . 0).Values.image.pullSecrets }}{{ $secrets = append $secrets (dict "name" .) }}{{ end -}}
{{- with $secrets }}
{{- dict "imagePullSecrets" . | toYaml | nindent (index $ 1) }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "agi-credit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agi-credit.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The store's claim: existingClaim, or the chart's `<fullname>-store`. */}}
{{- define "agi-credit.claimName" -}}
{{- default (printf "%s-store" (include "agi-credit.shortname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{/* MODEL_STORE where the claim is mounted whole (at /mnt/store): the store directory
inside it. No pod mounts a subPath: the kubelet would create a missing subPath directory
as root, which the training job (UID 10001) could not write on every kind of storage; the
job creates the directory itself, and the predictor waits for its metadata.json. */}}
{{- define "agi-credit.storePath" -}}
{{- with trimAll "/" .Values.persistence.subPath -}}/mnt/store/{{ . }}{{- else -}}/mnt/store{{- end -}}
{{- end -}}

{{/* KServe's STORAGE_URI for the store: pvc://<claim>[/<subPath>]. */}}
{{- define "agi-credit.storageUri" -}}
{{- $path := trimAll "/" .Values.persistence.subPath -}}
{{- if $path -}}
{{- printf "pvc://%s/%s" (include "agi-credit.claimName" .) $path -}}
{{- else -}}
{{- printf "pvc://%s" (include "agi-credit.claimName" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the sidecar's signing material and users: existingSecret, or the
chart's `<fullname>-auth` (none in env=dev without any value to hold). In env=prod the chart
fills what is not given: a JWT secret or key pair, and an `admin` password when no users are
given, kept across upgrades (`lookup`), as Grafana and the bitnami charts do. */}}
{{- define "agi-credit.secretName" -}}
{{- $auth := .Values.auth -}}
{{- if $auth.existingSecret -}}
{{- $auth.existingSecret -}}
{{- else if or (eq .Values.env "prod") $auth.jwt.secret $auth.jwt.privateKey $auth.users -}}
{{- printf "%s-auth" (include "agi-credit.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Which keys the Secret holds, as "true"/"" strings. */}}
{{- define "agi-credit.secretHasJwtSecret" -}}
{{- $auth := .Values.auth -}}
{{- if eq $auth.jwt.algorithm "HS256" -}}
{{- if or $auth.existingSecret $auth.jwt.secret (eq .Values.env "prod") }}true{{ end -}}
{{- end -}}
{{- end -}}

{{- define "agi-credit.secretHasPrivateKey" -}}
{{- $auth := .Values.auth -}}
{{- if ne $auth.jwt.algorithm "HS256" -}}
{{- if or $auth.existingSecret $auth.jwt.privateKey (eq .Values.env "prod") }}true{{ end -}}
{{- end -}}
{{- end -}}

{{- define "agi-credit.secretHasUsers" -}}
{{- if or .Values.auth.existingSecret .Values.auth.users }}true{{ end -}}
{{- end -}}

{{/* The chart generates the `admin` password (key admin-password), which the sidecar
hashes at start (BOOTSTRAP_ADMIN_PASSWORD): env=prod without users nor existingSecret. */}}
{{- define "agi-credit.secretHasAdminPassword" -}}
{{- if and (eq .Values.env "prod") (not (include "agi-credit.secretHasUsers" .)) }}true{{ end -}}
{{- end -}}

{{/* What rolls the pods when the auth settings change: the values, not the rendered Secret,
whose generated parts are random until `lookup` finds them (and `helm template` has none). */}}
{{- define "agi-credit.authChecksum" -}}
{{- $auth := .Values.auth -}}
{{- list .Values.env $auth.existingSecret $auth.existingSecretKeys $auth.jwt $auth.users | toJson | sha256sum -}}
{{- end -}}

{{/* The predictor Service's name and port, as clients (Ingress, HTTPRoute, helm test) see
it: the chart's Service, or the one KServe creates (`<isvc>-predictor`, port 80). */}}
{{- define "agi-credit.serviceName" -}}
{{- if eq .Values.mode "kserve" -}}
{{- printf "%s-predictor" (include "agi-credit.shortname" .) -}}
{{- else -}}
{{- include "agi-credit.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "agi-credit.servicePort" -}}
{{- if eq .Values.mode "kserve" -}}80{{- else -}}{{ .Values.service.port }}{{- end -}}
{{- end -}}

{{/* True when the store can attach to one node only. */}}
{{- define "agi-credit.storeIsRWO" -}}
{{- if not (has "ReadWriteMany" .Values.persistence.accessModes) }}true{{ end -}}
{{- end -}}

{{/* The predictor's rollout: updateStrategy, or Recreate with a single-node store. */}}
{{- define "agi-credit.updateStrategy" -}}
{{- if .Values.updateStrategy -}}
{{- toYaml .Values.updateStrategy -}}
{{- else if include "agi-credit.storeIsRWO" . -}}
type: Recreate
{{- else -}}
type: RollingUpdate
rollingUpdate:
  maxSurge: 1
  maxUnavailable: 0
{{- end -}}
{{- end -}}

{{/* The fewest predictor replicas there can be. */}}
{{- define "agi-credit.minReplicas" -}}
{{- ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled | int -}}
{{- end -}}

{{/* The pod-level securityContext of every pod. */}}
{{- define "agi-credit.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  {{- with .Values.securityContext.runAsUser }}
  runAsUser: {{ . }}
  {{- end }}
  {{- with .Values.securityContext.runAsGroup }}
  runAsGroup: {{ . }}
  {{- end }}
  {{- with .Values.securityContext.fsGroup }}
  fsGroup: {{ . }}
  fsGroupChangePolicy: {{ $.Values.securityContext.fsGroupChangePolicy }}
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* The container-level securityContext of every container. */}}
{{- define "agi-credit.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  {{- with .Values.securityContext.runAsUser }}
  runAsUser: {{ . }}
  {{- end }}
  {{- with .Values.securityContext.runAsGroup }}
  runAsGroup: {{ . }}
  {{- end }}
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  privileged: false
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* A probe's timings from values: include "agi-credit.probeTimings" .Values.auth.livenessProbe */}}
{{- define "agi-credit.probeTimings" -}}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end -}}

{{/* An exec probe that GETs a path of the predictor on loopback: (list $ "/v2/health/live"). */}}
{{- define "agi-credit.predictorProbeExec" -}}
exec:
  command:
    - python
    - -c
    - "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{{ (index . 0).Values.predictor.httpPort }}{{ index . 1 }}', timeout=4)"
{{- end -}}

{{/* The port the data download reaches: egressPort (a proxy's), the URL's, or its scheme's. */}}
{{- define "agi-credit.dataUrlPort" -}}
{{- $url := urlParse .Values.training.data.url.location -}}
{{- with .Values.training.data.url.egressPort }}{{ . }}{{ else -}}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" -}}
{{- if $port -}}{{ $port }}{{- else if eq $url.scheme "http" -}}80{{- else -}}443{{- end -}}
{{- end -}}
{{- end -}}

{{/* The checks values.schema.json cannot express; each failure says what to set. */}}
{{- define "agi-credit.validate" -}}
{{- $auth := .Values.auth -}}
{{- if and (eq .Values.env "prod") $auth.jwt.secret -}}
{{- if lt (len $auth.jwt.secret) 32 -}}
{{- fail "agi-credit: auth.jwt.secret must be at least 32 bytes with env=prod (openssl rand -hex 32), or leave it empty and the chart generates one." -}}
{{- end -}}
{{- if has (lower $auth.jwt.secret) (list "agisecretkey" "secret" "changeme" "change-me" "jwt-secret" "your-secret-key" "supersecret") -}}
{{- fail "agi-credit: auth.jwt.secret is a well-known example; generate one (openssl rand -hex 32), or leave it empty and the chart generates one." -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.mode "kserve") (not (dig "limits" "cpu" "" .Values.predictor.resources)) -}}
{{- fail "agi-credit: mode=kserve needs predictor.resources.limits.cpu: KServe gives containers[0] its own default (1 CPU) otherwise." -}}
{{- end -}}
{{- if and $auth.jwt.secret $auth.jwt.privateKey -}}
{{- fail "agi-credit: set auth.jwt.secret (HS256) or auth.jwt.privateKey (RS256/ES256), not both." -}}
{{- end -}}
{{- if and $auth.existingSecret (or $auth.jwt.secret $auth.jwt.privateKey $auth.users) -}}
{{- fail "agi-credit: auth.existingSecret replaces auth.jwt.secret, auth.jwt.privateKey and auth.users: set one or the others." -}}
{{- end -}}
{{- if and (ne $auth.jwt.algorithm "HS256") $auth.jwt.secret -}}
{{- fail (printf "agi-credit: auth.jwt.algorithm=%s signs with auth.jwt.privateKey, not auth.jwt.secret." $auth.jwt.algorithm) -}}
{{- end -}}
{{- if and (eq $auth.jwt.algorithm "HS256") $auth.jwt.privateKey -}}
{{- fail "agi-credit: auth.jwt.privateKey needs auth.jwt.algorithm RS256 or ES256." -}}
{{- end -}}
{{- $data := .Values.training.data -}}
{{- if and (eq $data.source "claim") (not $data.claim.name) -}}
{{- fail "agi-credit: training.data.source=claim needs training.data.claim.name (a PVC holding the CSV)." -}}
{{- end -}}
{{- if and (eq $data.source "url") (not $data.url.location) -}}
{{- fail "agi-credit: training.data.source=url needs training.data.url.location (http:// or https://)." -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "agi-credit: metrics.serviceMonitor.enabled needs metrics.enabled (the relay that serves the predictor's /metrics)." -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) -}}
{{- fail "agi-credit: autoscaling.maxReplicas must be at least autoscaling.minReplicas." -}}
{{- end -}}
{{- if and (eq .Values.mode "kserve") (ne .Values.service.type "ClusterIP") -}}
{{- fail "agi-credit: service.type applies to mode=deployment only; KServe creates a ClusterIP Service (expose it with ingress or httpRoute)." -}}
{{- end -}}
{{- $pdb := .Values.pdb -}}
{{- if and $pdb.enabled (kindIs "invalid" $pdb.maxUnavailable) (kindIs "invalid" $pdb.minAvailable) -}}
{{- fail "agi-credit: pdb.enabled needs pdb.maxUnavailable or pdb.minAvailable." -}}
{{- end -}}
{{- if and $pdb.enabled (kindIs "invalid" $pdb.maxUnavailable) (not (kindIs "string" $pdb.minAvailable)) -}}
{{- if ge (int $pdb.minAvailable) (int (include "agi-credit.minReplicas" .)) -}}
{{- fail (printf "agi-credit: pdb.minAvailable=%v with as few as %s predictor replicas would block every node drain: use pdb.maxUnavailable (1, the default)." $pdb.minAvailable (include "agi-credit.minReplicas" .)) -}}
{{- end -}}
{{- end -}}
{{- if and (has "ReadWriteOncePod" .Values.persistence.accessModes) .Values.training.enabled -}}
{{- fail "agi-credit: persistence.accessModes ReadWriteOncePod lets one pod mount the store, but the training pods and the predictor both do: use ReadWriteOnce (one node) or ReadWriteMany, or training.enabled=false with a store filled elsewhere." -}}
{{- end -}}
{{- if and .Values.tests.credentials.password .Values.tests.credentials.existingSecret -}}
{{- fail "agi-credit: set tests.credentials.password or tests.credentials.existingSecret, not both." -}}
{{- end -}}
{{- end -}}

{{/* How the helm test logs in: "given" (credentials set), "generated" (the chart's admin,
its password from the release's Secret), "dev" (admin/123456), or "" (public checks only). */}}
{{- define "agi-credit.testLogin" -}}
{{- $c := .Values.tests.credentials -}}
{{- if and $c.username (or $c.password $c.existingSecret) -}}given
{{- else if include "agi-credit.secretHasAdminPassword" . -}}generated
{{- else if and (eq .Values.env "dev") (not (include "agi-credit.secretHasUsers" .)) -}}dev
{{- end -}}
{{- end -}}

{{/* The egress rule to the cluster DNS. */}}
{{- define "agi-credit.networkPolicy.dnsEgress" -}}
- ports:
    - port: {{ .Values.networkPolicy.dnsPort }}
      protocol: UDP
    - port: {{ .Values.networkPolicy.dnsPort }}
      protocol: TCP
  {{- with .Values.networkPolicy.dns }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Memory bounds, in MiB, from what docs/reliability.md ("Memory bounds") measured, with
margins (tests/chart/test_resources.py checks the rendered limits against them). The
sidecar: its idle RSS, plus each /predict or gRPC call it serves at once
(MAX_CONCURRENT_PREDICTS), at most 4 times MAX_REQUEST_BYTES (grpcio holds a message about
3.9 times while it reads it), plus the argon2 pool (64 MiB a check). The predictor: its
RSS with R and one version, plus 10 times a JSON body at the limit (R parsing it), plus
384 bytes a row of MAX_BATCH_ROWS (R's columns). */}}
{{- define "agi-credit.auth.memoryBound" -}}
{{- $a := .Values.auth -}}
{{- $body := int64 $a.maxRequestBytes -}}
{{- include "agi-credit.ceilMiB" (add (mul 128 1048576) (mul (int64 $a.maxConcurrentPredicts) 4 $body) (mul (int64 $a.passwordHashWorkers) 64 1048576)) -}}
{{- end -}}

{{- define "agi-credit.predictor.memoryBound" -}}
{{- $body := int64 .Values.auth.maxRequestBytes -}}
{{- include "agi-credit.ceilMiB" (add (mul 512 1048576) (mul 10 $body) (mul (int64 .Values.predictor.maxBatchRows) 384)) -}}
{{- end -}}

{{/* Bytes in whole MiB, rounded up. */}}
{{- define "agi-credit.ceilMiB" -}}
{{- div (add . 1048575) 1048576 -}}
{{- end -}}

{{/* A container's resources with limits.memory set to the bound (in MiB) when not given:
(list .Values.x.resources bound). */}}
{{- define "agi-credit.resources" -}}
{{- $resources := deepCopy (index . 0) -}}
{{- $limits := get $resources "limits" | default dict -}}
{{- if not (hasKey $limits "memory") -}}
{{- $_ := set $limits "memory" (printf "%sMi" (index . 1)) -}}
{{- end -}}
{{- $_ := set $resources "limits" $limits -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* A memory quantity ("640Mi", "2Gi", "1G", "1073741824") in whole MiB, rounded down. */}}
{{- define "agi-credit.mebibytes" -}}
{{- $q := toString . -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $unit := regexFind "[A-Za-z]+$" $q -}}
{{- $number := trimSuffix $unit $q | float64 -}}
{{- $bytes := mulf $number (get $units $unit | default 1) -}}
{{- divf $bytes 1048576 | floor | int64 -}}
{{- end -}}

{{/* NOTES' warning for a memory limit given below its bound: (list "auth" resources bound). */}}
{{- define "agi-credit.memoryWarning" -}}
{{- $limits := (index . 1).limits | default dict -}}
{{- if hasKey $limits "memory" -}}
{{- if lt (int64 (include "agi-credit.mebibytes" $limits.memory)) (int64 (index . 2)) }}
WARNING: {{ index . 0 }}.resources.limits.memory ({{ $limits.memory }}) is below the worst case its
settings allow ({{ index . 2 }}Mi, docs/reliability.md): a request at the limits may be OOM-killed.
{{- end -}}
{{- end -}}
{{- end -}}
