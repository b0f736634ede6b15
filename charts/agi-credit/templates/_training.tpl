{{/*
The training pod, shared by the first training Job (helm install) and the retraining CronJob:
(list $ "job") or (list $ "cronjob"). `agi-credit train` writes a new version into the store
(the claim, read-write), from data that is synthetic, on a claim, or downloaded.
*/}}
{{- define "agi-credit.training.podTemplate" -}}
{{- $ := index . 0 -}}
{{- $kind := index . 1 -}}
{{- $t := $.Values.training -}}
{{- $source := $t.data.source -}}
{{- $dataFile := ternary (trimPrefix "/" $t.data.claim.file) "application_train.csv" (eq $source "claim") -}}
metadata:
  labels:
    {{- include "agi-credit.componentLabels" (list $ "training") | nindent 4 }}
    {{- with $t.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $t.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "agi-credit.serviceAccountName" $ }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- include "agi-credit.podSecurityContext" $ | nindent 2 }}
  {{- include "agi-credit.imagePullSecrets" (list $ 2) }}
  {{- with $t.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $t.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $t.affinity }}
  affinity:
    {{- toYaml $t.affinity | nindent 4 }}
  {{- else if and $.Values.persistence.colocateTraining (include "agi-credit.storeIsRWO" $) }}
  # A ReadWriteOnce store attaches to one node: train where a predictor pod runs.
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "agi-credit.componentSelectorLabels" (list $ "predictor") | nindent 14 }}
  {{- end }}
  {{- if eq $source "url" }}
  initContainers:
    - name: fetch-data
      image: {{ include "agi-credit.image" (list $ $.Values.image.training) }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      command: ["python", "/opt/agi-credit-chart/fetch_data.py"]
      env:
        - name: DATA_URL
          value: {{ $t.data.url.location | quote }}
        - name: DATA_SHA256
          value: {{ $t.data.url.sha256 | quote }}
        - name: DATA_PATH
          value: /mnt/data/application_train.csv
        {{- with $t.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- include "agi-credit.containerSecurityContext" $ | nindent 6 }}
      resources:
        {{- toYaml $t.resources | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /mnt/data
        - name: scripts
          mountPath: /opt/agi-credit-chart
          readOnly: true
        - name: tmp
          mountPath: /tmp
  {{- end }}
  containers:
    - name: train
      image: {{ include "agi-credit.image" (list $ $.Values.image.training) }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      args:
        - train
        {{- if eq $source "synthetic" }}
        - --synthetic
        - --rows
        - {{ $t.data.synthetic.rows | int64 | quote }}
        - --seed
        - {{ $t.data.synthetic.seed | int64 | quote }}
        {{- end }}
        {{- if and (eq $kind "job") $t.onlyIfEmpty }}
        - --if-empty
        {{- end }}
      env:
        - name: ENV
          value: {{ $.Values.env | quote }}
        - name: LOG_LEVEL
          value: {{ $.Values.logLevel | quote }}
        - name: MODEL_NAME
          value: {{ $.Values.modelName | quote }}
        - name: MODEL_STORE
          value: {{ include "agi-credit.storePath" $ | quote }}
        - name: DATA_PATH
          value: {{ printf "/mnt/data/%s" $dataFile | quote }}
        - name: MIN_AUC
          value: {{ $t.minAUC | quote }}
        - name: AUC_TOLERANCE
          value: {{ $t.aucTolerance | quote }}
        - name: HOLDOUT_FRACTION
          value: {{ $t.holdoutFraction | quote }}
        - name: SPLIT_SEED
          value: {{ $t.splitSeed | int64 | quote }}
        - name: DECISION_THRESHOLD
          value: {{ $t.decisionThreshold | quote }}
        - name: TRAIN_TIMEOUT_SECONDS
          value: {{ $t.timeoutSeconds | int64 | quote }}
        - name: AGI_CREDIT_ACTOR
          value: {{ default (printf "helm/%s" $.Release.Name) $t.actor | quote }}
        {{- with $t.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- include "agi-credit.containerSecurityContext" $ | nindent 6 }}
      resources:
        {{- toYaml $t.resources | nindent 8 }}
      volumeMounts:
        - name: store
          mountPath: /mnt/store
        - name: data
          mountPath: /mnt/data
          {{- if eq $source "claim" }}
          readOnly: true
          {{- end }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: store
      persistentVolumeClaim:
        claimName: {{ include "agi-credit.claimName" $ }}
    {{- if eq $source "claim" }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ $t.data.claim.name }}
        readOnly: true
    {{- else }}
    - name: data
      emptyDir:
        sizeLimit: {{ $t.data.sizeLimit }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: {{ $t.tmpSizeLimit }}
    {{- if eq $source "url" }}
    - name: scripts
      configMap:
        name: {{ include "agi-credit.fullname" $ }}-scripts
        defaultMode: 0444
    {{- end }}
{{- end -}}

{{/* The Job spec's own settings (both kinds). */}}
{{- define "agi-credit.training.jobSettings" -}}
{{- $t := .Values.training -}}
backoffLimit: {{ $t.backoffLimit }}
{{- if not (kindIs "invalid" $t.activeDeadlineSeconds) }}
activeDeadlineSeconds: {{ $t.activeDeadlineSeconds | int64 }}
{{- end }}
{{- if not (kindIs "invalid" $t.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ $t.ttlSecondsAfterFinished | int64 }}
{{- end }}
{{- end -}}


{{/* The first training Job's name: `<shortname>-train-<hash of its spec>`. */}}
{{- define "agi-credit.training.jobName" -}}
{{- $spec := print (include "agi-credit.training.jobSettings" .) (include "agi-credit.training.podTemplate" (list . "job")) -}}
{{- printf "%s-train-%s" (include "agi-credit.shortname" .) ($spec | sha256sum | trunc 10) -}}
{{- end -}}
