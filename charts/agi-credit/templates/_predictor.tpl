{{/*
The predictor pod, shared by the Deployment (mode=deployment) and the InferenceService
(mode=kserve). Its containers, in this order, which is KServe's collocation layout:
  1. predictor  `agi-credit serve` on 127.0.0.1. In kserve mode it is `kserve-container`:
                KServe's controller writes the predictor container over containers[0]
                (pkg/controller/v1beta1/inferenceservice/components/predictor.go, v0.20.0).
  2. auth       the JWT sidecar, with the pod's only Service ports (HTTP, then gRPC). In
                kserve mode it is `transformer-container`: KServe's raw-mode Service targets
                that container when there is one (createDefaultSvc), its first port as port 80.
  3. metrics    optional relay of the predictor's and the sidecar's /metrics, both on
                loopback (metrics.enabled)
*/}}

{{- define "agi-credit.predictor.podLabels" -}}
{{ include "agi-credit.componentLabels" (list . "predictor") }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Annotations that roll the pods when their configuration or secret changes. */}}
{{- define "agi-credit.predictor.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/auth: {{ include "agi-credit.authChecksum" . }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "agi-credit.predictor.containers" -}}
{{- $kserve := eq .Values.mode "kserve" -}}
{{- $secretName := include "agi-credit.secretName" . -}}
- name: {{ ternary "kserve-container" "predictor" $kserve }}
  image: {{ include "agi-credit.image" (list . .Values.image.predictor) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve"]
  env:
    - name: ENV
      value: {{ .Values.env | quote }}
    - name: LOG_LEVEL
      value: {{ .Values.logLevel | quote }}
    - name: MODEL_NAME
      value: {{ .Values.modelName | quote }}
    - name: PREDICTOR_HOST
      value: "127.0.0.1"
    - name: HTTP_PORT
      value: {{ .Values.predictor.httpPort | quote }}
    - name: GRPC_PORT
      value: {{ .Values.predictor.grpcPort | quote }}
    {{- if $kserve }}
    # KServe mounts pvc://<claim>/<subPath> read-only at /mnt/models. MODEL_STORE points
    # there too: the predictor picks its store once at start, before the first model lands.
    - name: STORAGE_URI
      value: {{ include "agi-credit.storageUri" . | quote }}
    - name: KSERVE_STORAGE_PATH
      value: /mnt/models
    - name: MODEL_STORE
      value: /mnt/models
    {{- else }}
    - name: MODEL_STORE
      value: {{ include "agi-credit.storePath" . | quote }}
    {{- end }}
    - name: RELOAD_INTERVAL
      value: {{ .Values.predictor.reloadInterval | quote }}
    - name: SCORING
      value: {{ .Values.predictor.scoring | quote }}
    - name: MAX_BATCH_ROWS
      value: {{ .Values.predictor.maxBatchRows | int64 | quote }}
    - name: MAX_REQUEST_BYTES  # the sidecar's limit: a body it lets through, this takes
      value: {{ .Values.auth.maxRequestBytes | int64 | quote }}
    - name: PARITY_ROWS
      value: {{ .Values.predictor.parityRows | int64 | quote }}
    - name: PARITY_TOLERANCE
      value: {{ .Values.predictor.parityTolerance | quote }}
    {{- with .Values.predictor.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- include "agi-credit.containerSecurityContext" . | nindent 2 }}
  resources:
    {{- include "agi-credit.resources" (list .Values.predictor.resources (include "agi-credit.predictor.memoryBound" .)) | nindent 4 }}
  startupProbe:
    {{- include "agi-credit.predictorProbeExec" (list . "/v2/health/live") | nindent 4 }}
    {{- include "agi-credit.probeTimings" .Values.predictor.startupProbe | nindent 4 }}
  livenessProbe:
    {{- include "agi-credit.predictorProbeExec" (list . "/v2/health/live") | nindent 4 }}
    {{- include "agi-credit.probeTimings" .Values.predictor.livenessProbe | nindent 4 }}
  readinessProbe:
    {{- include "agi-credit.predictorProbeExec" (list . "/v2/health/ready") | nindent 4 }}
    {{- include "agi-credit.probeTimings" .Values.predictor.readinessProbe | nindent 4 }}
  volumeMounts:
    - name: tmp-predictor
      mountPath: /tmp
    {{- if not $kserve }}
    - name: store
      mountPath: /mnt/store
      readOnly: true
    {{- end }}
- name: {{ ternary "transformer-container" "auth" $kserve }}
  image: {{ include "agi-credit.image" (list . .Values.image.auth) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["auth"]
  ports:
    - name: http
      containerPort: {{ .Values.auth.port }}
      protocol: TCP
    {{- if .Values.auth.grpcPort }}
    - name: grpc
      containerPort: {{ .Values.auth.grpcPort }}
      protocol: TCP
    {{- end }}
  env:
    - name: ENV
      value: {{ .Values.env | quote }}
    - name: LOG_LEVEL
      value: {{ .Values.logLevel | quote }}
    - name: MODEL_NAME
      value: {{ .Values.modelName | quote }}
    - name: AUTH_HOST
      value: "0.0.0.0"
    - name: AUTH_PORT
      value: {{ .Values.auth.port | quote }}
    - name: PREDICTOR_URL
      value: {{ printf "http://127.0.0.1:%v" .Values.predictor.httpPort | quote }}
    - name: JWT_ALGORITHM
      value: {{ .Values.auth.jwt.algorithm | quote }}
    - name: JWT_ISSUER
      value: {{ .Values.auth.jwt.issuer | quote }}
    - name: JWT_AUDIENCE
      value: {{ .Values.auth.jwt.audience | quote }}
    - name: TOKEN_TTL_SECONDS
      value: {{ .Values.auth.jwt.ttlSeconds | quote }}
    - name: JWT_LEEWAY_SECONDS
      value: {{ .Values.auth.jwt.leewaySeconds | quote }}
    - name: LOGIN_ATTEMPTS_PER_CLIENT
      value: {{ .Values.auth.login.attemptsPerClient | quote }}
    - name: LOGIN_FAILURES_PER_USER
      value: {{ .Values.auth.login.failuresPerUser | quote }}
    - name: LOGIN_WINDOW_SECONDS
      value: {{ .Values.auth.login.windowSeconds | quote }}
    - name: RATE_LIMIT_MAX_KEYS
      value: {{ .Values.auth.rateLimitMaxKeys | int64 | quote }}
    - name: PASSWORD_HASH_WORKERS
      value: {{ .Values.auth.passwordHashWorkers | quote }}
    - name: MAX_REQUEST_BYTES
      value: {{ .Values.auth.maxRequestBytes | int64 | quote }}
    - name: MAX_CONCURRENT_PREDICTS
      value: {{ .Values.auth.maxConcurrentPredicts | quote }}
    - name: AUTH_GRPC_PORT
      value: {{ .Values.auth.grpcPort | quote }}
    - name: PREDICTOR_GRPC
      value: {{ printf "127.0.0.1:%d" (int .Values.predictor.grpcPort) | quote }}
    - name: AUTH_METRICS_PORT  # on 127.0.0.1 only: for the relay, not a container port
      value: {{ .Values.auth.metricsPort | quote }}
    {{- with .Values.auth.trustedProxies }}
    - name: TRUSTED_PROXIES
      value: {{ join "," . | quote }}
    {{- end }}
    {{- if include "agi-credit.secretHasJwtSecret" . }}
    - name: JWT_SECRET
      valueFrom:
        secretKeyRef:
          name: {{ $secretName }}
          key: {{ ternary .Values.auth.existingSecretKeys.jwtSecret "JWT_SECRET" (not (empty .Values.auth.existingSecret)) }}
    {{- end }}
    {{- if include "agi-credit.secretHasPrivateKey" . }}
    - name: JWT_PRIVATE_KEY_PATH
      value: /etc/agi-credit/jwt-private-key.pem
    {{- end }}
    {{- if include "agi-credit.secretHasUsers" . }}
    - name: USERS_FILE
      value: /etc/agi-credit/users.yaml
    {{- end }}
    {{- if include "agi-credit.secretHasAdminPassword" . }}
    - name: BOOTSTRAP_ADMIN_PASSWORD  # the generated admin's; hashed at start, never stored
      valueFrom:
        secretKeyRef:
          name: {{ $secretName }}
          key: admin-password
    {{- end }}
    {{- with .Values.auth.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- include "agi-credit.containerSecurityContext" . | nindent 2 }}
  resources:
    {{- include "agi-credit.resources" (list .Values.auth.resources (include "agi-credit.auth.memoryBound" .)) | nindent 4 }}
  startupProbe:
    httpGet:
      path: /health
      port: http
    {{- include "agi-credit.probeTimings" .Values.auth.startupProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /health
      port: http
    {{- include "agi-credit.probeTimings" .Values.auth.livenessProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /ready
      port: http
    {{- include "agi-credit.probeTimings" .Values.auth.readinessProbe | nindent 4 }}
  volumeMounts:
    - name: tmp-auth
      mountPath: /tmp
    {{- if or (include "agi-credit.secretHasUsers" .) (include "agi-credit.secretHasPrivateKey" .) }}
    - name: auth-secret
      mountPath: /etc/agi-credit
      readOnly: true
    {{- end }}
{{- if .Values.metrics.enabled }}
- name: metrics
  image: {{ include "agi-credit.image" (list . .Values.image.auth) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["python", "/opt/agi-credit-chart/metrics_relay.py"]
  ports:
    - name: metrics
      containerPort: {{ .Values.metrics.port }}
      protocol: TCP
  env:
    - name: METRICS_PORT
      value: {{ .Values.metrics.port | quote }}
    {{- $upstreams := list (printf "http://127.0.0.1:%v/metrics" .Values.predictor.httpPort) }}
    {{- if .Values.auth.metricsPort }}
    {{- $upstreams = append $upstreams (printf "http://127.0.0.1:%v/metrics" .Values.auth.metricsPort) }}
    {{- end }}
    - name: METRICS_UPSTREAM  # the predictor's, then the sidecar's (the users file's state)
      value: {{ join "," $upstreams | quote }}
  {{- include "agi-credit.containerSecurityContext" . | nindent 2 }}
  resources:
    {{- toYaml .Values.metrics.resources | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: metrics
    periodSeconds: 30
    timeoutSeconds: 3
  readinessProbe:
    httpGet:
      path: /healthz
      port: metrics
    periodSeconds: 10
    timeoutSeconds: 3
  volumeMounts:
    - name: scripts
      mountPath: /opt/agi-credit-chart
      readOnly: true
    - name: tmp-metrics
      mountPath: /tmp
{{- end }}
{{- end -}}

{{- define "agi-credit.predictor.volumes" -}}
- name: tmp-auth
  emptyDir:
    sizeLimit: {{ .Values.auth.tmpSizeLimit }}
- name: tmp-predictor
  emptyDir:
    sizeLimit: {{ .Values.predictor.tmpSizeLimit }}
{{- if ne .Values.mode "kserve" }}
- name: store
  persistentVolumeClaim:
    claimName: {{ include "agi-credit.claimName" . }}
{{- end }}
{{- if or (include "agi-credit.secretHasUsers" .) (include "agi-credit.secretHasPrivateKey" .) }}
- name: auth-secret
  secret:
    secretName: {{ include "agi-credit.secretName" . }}
    defaultMode: 0440
    items:
      {{- if include "agi-credit.secretHasUsers" . }}
      - key: {{ ternary .Values.auth.existingSecretKeys.users "users.yaml" (not (empty .Values.auth.existingSecret)) }}
        path: users.yaml
      {{- end }}
      {{- if include "agi-credit.secretHasPrivateKey" . }}
      - key: {{ ternary .Values.auth.existingSecretKeys.jwtPrivateKey "jwt-private-key.pem" (not (empty .Values.auth.existingSecret)) }}
        path: jwt-private-key.pem
      {{- end }}
{{- end }}
{{- if .Values.metrics.enabled }}
- name: scripts
  configMap:
    name: {{ include "agi-credit.fullname" . }}-scripts
    defaultMode: 0444
- name: tmp-metrics
  emptyDir:
    sizeLimit: 16Mi
{{- end }}
{{- end -}}

{{/* Scheduling and identity of the predictor pod (both modes). */}}
{{- define "agi-credit.predictor.podSettings" -}}
serviceAccountName: {{ include "agi-credit.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- include "agi-credit.podSecurityContext" . | nindent 0 }}
{{- include "agi-credit.imagePullSecrets" (list . 0) }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
