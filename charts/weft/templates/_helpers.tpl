{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "weft.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name.
*/}}
{{- define "weft.fullname" -}}
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

{{- define "weft.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the controller pods. They must never change between upgrades.
*/}}
{{- define "weft.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weft.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "weft.labels" -}}
helm.sh/chart: {{ include "weft.chart" . }}
{{ include "weft.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weft
{{- end }}

{{/*
Names of the objects other templates refer to.
*/}}
{{- define "weft.serviceName" -}}
{{- include "weft.fullname" . }}
{{- end }}

{{- define "weft.serviceAccountName" -}}
{{- include "weft.fullname" . }}
{{- end }}

{{- define "weft.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "weft.fullname" .) }}
{{- end }}

{{- define "weft.certificateName" -}}
{{- printf "%s-webhook" (include "weft.fullname" .) }}
{{- end }}

{{/*
DNS names the webhook serving certificate must carry: how the API server reaches the Service.
*/}}
{{- define "weft.webhookDNSNames" -}}
{{- $svc := include "weft.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson }}
{{- end }}

{{/*
Address of the controller's gRPC server (identity, policy and destination APIs) that injected proxies dial.
*/}}
{{- define "weft.proxyControlAddr" -}}
{{- if .Values.proxy.controlPlaneAddress }}
{{- .Values.proxy.controlPlaneAddress }}
{{- else }}
{{- printf "%s.%s.svc.%s:%d" (include "weft.serviceName" .) .Release.Namespace .Values.clusterDomain (int .Values.controller.ports.grpc) }}
{{- end }}
{{- end }}

{{/*
Trust domain of mesh identities.
*/}}
{{- define "weft.trustDomain" -}}
{{- .Values.identity.trustDomain }}
{{- end }}

{{/*
Mesh identity of the controller (its ServiceAccount's), which the proxies require of its gRPC server.
*/}}
{{- define "weft.proxyControlName" -}}
{{- printf "%s.%s.serviceaccount.identity.%s.%s" (include "weft.serviceAccountName" .) .Release.Namespace .Release.Namespace (include "weft.trustDomain" .) }}
{{- end }}

{{/*
ConfigMap holding the identity trust anchors (key ca-bundle.crt) that the controller writes into injected proxies.
*/}}
{{- define "weft.trustAnchorsConfigMapName" -}}
{{- printf "%s-identity-trust-anchors" (include "weft.fullname" .) }}
{{- end }}

{{/*
A list of ports and port ranges as the controller's comma-separated flag value.
*/}}
{{- define "weft.portList" -}}
{{- $items := list }}
{{- range . }}
{{- if kindIs "string" . }}
{{- $items = append $items . }}
{{- else }}
{{- $items = append $items (toString (int .)) }}
{{- end }}
{{- end }}
{{- join "," $items }}
{{- end }}

{{/*
Webhook TLS material for tls.mode=helm, as YAML with keys ca.crt, tls.crt, tls.key.
The Secret written by an earlier install or upgrade is reused, so the caBundle and the serving certificate stay
stable across `helm upgrade`. New material is generated only when the Secret is missing, incomplete, or was made
for other DNS names (the Secret records them in the weft.dev/webhook-dns-names annotation).
`helm template` has no cluster to look up, so it always generates fresh material.
*/}}
{{- define "weft.helmTLS" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "weft.tlsSecretName" .) }}
{{- $data := dict }}
{{- if $existing }}
{{- $annotations := $existing.metadata.annotations | default dict }}
{{- if eq (index $annotations "weft.dev/webhook-dns-names" | default "") (include "weft.webhookDNSNames" . | fromJsonArray | join ",") }}
{{- $data = $existing.data | default dict }}
{{- end }}
{{- end }}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") }}
ca.crt: {{ index $data "ca.crt" }}
tls.crt: {{ index $data "tls.crt" }}
tls.key: {{ index $data "tls.key" }}
{{- else }}
{{- $days := int .Values.tls.helm.validityDays }}
{{- $ca := genCA (printf "%s-webhook-ca" (include "weft.fullname" .)) $days }}
{{- $dnsNames := include "weft.webhookDNSNames" . | fromJsonArray }}
{{- $cert := genSignedCert (index $dnsNames 2) nil $dnsNames $days $ca }}
ca.crt: {{ $ca.Cert | b64enc }}
tls.crt: {{ $cert.Cert | b64enc }}
tls.key: {{ $cert.Key | b64enc }}
{{- end }}
{{- end }}

{{/*
Metadata shared by both webhook configurations; in certManager mode cert-manager's cainjector fills the caBundle.
*/}}
{{- define "weft.webhookAnnotations" -}}
{{- if eq .Values.tls.mode "certManager" -}}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "weft.certificateName" .) }}
{{- end }}
{{- end }}

{{/*
Name of the identity issuer Secret.
*/}}
{{- define "weft.identityIssuerSecretName" -}}
{{- if eq .Values.identity.mode "external" }}
{{- required "identity.external.issuerSecretName is required when identity.mode=external" .Values.identity.external.issuerSecretName }}
{{- else }}
{{- printf "%s-identity-issuer" (include "weft.fullname" .) }}
{{- end }}
{{- end }}

{{/*
identity.mode=helm: the issuer Secret's data (ca.crt, tls.crt, tls.key). The Secret of an earlier install is reused
as long as it is complete and made for the same trust domain, so upgrades never change the trust anchor (which would
cut every meshed proxy off). Generated material is one self-signed ECDSA P-256 CA that is both anchor and issuer.
`helm template` has no cluster to look up, so it always generates fresh material.
*/}}
{{- define "weft.helmIdentity" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "weft.identityIssuerSecretName" .) }}
{{- $data := dict }}
{{- if $existing }}
{{- $annotations := $existing.metadata.annotations | default dict }}
{{- if eq (index $annotations "weft.dev/identity-trust-domain" | default "") .Values.identity.trustDomain }}
{{- $data = $existing.data | default dict }}
{{- end }}
{{- end }}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") }}
ca.crt: {{ index $data "ca.crt" }}
tls.crt: {{ index $data "tls.crt" }}
tls.key: {{ index $data "tls.key" }}
{{- else }}
{{- $key := genPrivateKey "ecdsa" }}
{{- $ca := genCAWithKey (printf "identity.%s.%s" .Release.Namespace .Values.identity.trustDomain) (int .Values.identity.helm.validityDays) $key }}
ca.crt: {{ $ca.Cert | b64enc }}
tls.crt: {{ $ca.Cert | b64enc }}
tls.key: {{ $ca.Key | b64enc }}
{{- end }}
{{- end }}
