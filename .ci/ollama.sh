#!/usr/bin/env bash
# Build (or reuse a cached) Ollama server binary from the Go module proxy.
#
# Usage: .ci/ollama.sh            -> prints the path of the ollama binary as
#                                    the last line on stdout; progress on stderr.
#
# Environment:
#   PERSONA_CI_CACHE   cache root (default $HOME/.cache/persona-ci); the binary
#                      lands in $PERSONA_CI_CACHE/ollama-v0.17.4/ollama
#   OLLAMA_VERSION     module version to build (default v0.17.4)
#   OLLAMA_REBUILD=1   ignore the cached binary
#
# The ggml CPU backend is compiled into the binary by cgo (package
# ml/backend/ggml/ggml/src/ggml-cpu, -DGGML_USE_CPU), so the single binary is
# all that is needed at run time (plus libc/libstdc++/libgcc_s from the base
# system). No lib/ollama/*.so files are produced or required.
set -euo pipefail

OLLAMA_VERSION="${OLLAMA_VERSION:-v0.17.4}"
MODULE="github.com/ollama/ollama"
CACHE_ROOT="${PERSONA_CI_CACHE:-${HOME:?HOME must be set}/.cache/persona-ci}"
CACHE_DIR="${CACHE_ROOT}/ollama-${OLLAMA_VERSION}"
BIN="${CACHE_DIR}/ollama"
APT_PACKAGES=(nlohmann-json3-dev libstb-dev)

log() { printf '[ollama.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# binary_ok PATH: the binary starts and reports the expected client version.
# OLLAMA_HOST points at a closed port so "-v" does not find a real server.
binary_ok() {
	local out
	[[ -x "$1" ]] || return 1
	out="$(OLLAMA_HOST=127.0.0.1:1 HOME="${HOME:-/tmp}" timeout 20 "$1" -v 2>&1)" || return 1
	[[ "$out" == *"client version is ${OLLAMA_VERSION#v}"* ]]
}

if [[ "${OLLAMA_REBUILD:-0}" != 1 ]] && binary_ok "$BIN"; then
	log "using cached $BIN"
	echo "$BIN"
	exit 0
fi

# Serialize concurrent runs sharing a cache dir, then re-check: another run
# may have finished the build while we waited.
mkdir -p "$CACHE_DIR"
if command -v flock >/dev/null; then
	exec 9>"$CACHE_DIR/.lock"
	flock 9
	if [[ "${OLLAMA_REBUILD:-0}" != 1 ]] && binary_ok "$BIN"; then
		log "using cached $BIN (built by a concurrent run)"
		echo "$BIN"
		exit 0
	fi
fi

command -v go >/dev/null || die "go not found on PATH"
command -v gcc >/dev/null && command -v g++ >/dev/null || die "gcc/g++ required (cgo)"

# --- 1. Debian packages providing the headers missing from the module zip ---
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
	command -v sudo >/dev/null && SUDO=(sudo -n) || true
fi
missing=()
# (command output is captured before matching: with pipefail, "cmd | grep -q"
# can fail when grep exits early and cmd dies of SIGPIPE)
for p in "${APT_PACKAGES[@]}"; do
	status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
	[[ "$status" == *"install ok installed"* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	log "installing apt packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	need_update=0
	for p in "${missing[@]}"; do
		# no candidate in the local package lists -> lists are missing/stale
		policy="$(apt-cache policy "$p" 2>/dev/null || true)"
		[[ "$policy" =~ Candidate:\ [^\(] ]] || need_update=1
	done
	if ((need_update)); then
		log "apt-get update (package lists lack ${missing[*]})"
		"${SUDO[@]}" apt-get update -q >&2
	fi
	if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
		log "apt-get install failed; retrying after apt-get update"
		"${SUDO[@]}" apt-get update -q >&2
		"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
	fi
fi

# --- 2. module source from the Go module proxy ---
# A fixed build path (not mktemp): cgo's -I${SRCDIR} flags are absolute, so
# the Go build cache only hits on a rebuild if the source sits at the same
# path. Cold build ~5 min on 2 cores; a rebuild with a warm GOCACHE is much
# faster. Removed again on exit.
WORK="${TMPDIR:-/tmp}/persona-ollama-build-${OLLAMA_VERSION}"
rm -rf "$WORK"
trap 'chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/dl"
printf 'module persona-ci/ollama-download\n\ngo 1.24\n' >"$WORK/dl/go.mod"
log "go mod download ${MODULE}@${OLLAMA_VERSION}"
json="$(cd "$WORK/dl" && GOFLAGS=-mod=mod go mod download -json "${MODULE}@${OLLAMA_VERSION}")" ||
	die "go mod download failed: $json"
SRC="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
[[ -n "$SRC" && -f "$SRC/go.mod" ]] || die "no module Dir in go mod download output: $json"
log "module source: $SRC"

# --- 3. writable copy (the module cache is read-only) ---
cp -R "$SRC" "$WORK/src"
chmod -R u+w "$WORK/src"

# --- 4. miniaudio stub ---
# llama/llama.cpp/tools/mtmd/mtmd-helper.cpp includes "miniaudio/miniaudio.h"
# (llama.cpp's vendor/ dir is not in the module zip) and uses only the decoder
# API below, to decode audio inputs of multimodal models. The stub makes every
# decode fail cleanly (audio input unsupported); text models are unaffected.
# It lives in the cache dir so CGO_CPPFLAGS stays identical between runs and
# the Go build cache can be reused.
STUB_INC="${CACHE_DIR}/include"
mkdir -p "$STUB_INC/miniaudio"
cat >"$STUB_INC/miniaudio/miniaudio.h.tmp" <<'STUB'
/* Minimal miniaudio stub for building Ollama's mtmd-helper.cpp without
 * llama.cpp's vendor/ directory. Decoding always fails with
 * MA_NOT_IMPLEMENTED. Generated by persona's .ci/ollama.sh. */
#ifndef PERSONA_MINIAUDIO_STUB_H
#define PERSONA_MINIAUDIO_STUB_H
#include <stddef.h>
#include <stdint.h>
typedef int ma_result;
#define MA_SUCCESS 0
#define MA_NOT_IMPLEMENTED (-29)
typedef uint32_t ma_uint32;
typedef uint64_t ma_uint64;
typedef enum { ma_format_unknown = 0, ma_format_u8, ma_format_s16, ma_format_s24, ma_format_s32, ma_format_f32 } ma_format;
typedef struct { ma_format format; ma_uint32 channels; ma_uint32 sampleRate; } ma_decoder_config;
typedef struct { int unused; } ma_decoder;
static inline ma_decoder_config ma_decoder_config_init(ma_format f, ma_uint32 channels, ma_uint32 rate) {
	ma_decoder_config c;
	c.format = f; c.channels = channels; c.sampleRate = rate;
	return c;
}
static inline ma_result ma_decoder_init_memory(const void *data, size_t size, const ma_decoder_config *cfg, ma_decoder *d) {
	(void)data; (void)size; (void)cfg; (void)d;
	return MA_NOT_IMPLEMENTED;
}
static inline ma_result ma_decoder_get_length_in_pcm_frames(ma_decoder *d, ma_uint64 *n) {
	(void)d; if (n) *n = 0;
	return MA_NOT_IMPLEMENTED;
}
static inline ma_result ma_decoder_read_pcm_frames(ma_decoder *d, void *out, ma_uint64 n, ma_uint64 *read) {
	(void)d; (void)out; (void)n; if (read) *read = 0;
	return MA_NOT_IMPLEMENTED;
}
static inline ma_result ma_decoder_uninit(ma_decoder *d) { (void)d; return MA_SUCCESS; }
#endif
STUB
mv -f "$STUB_INC/miniaudio/miniaudio.h.tmp" "$STUB_INC/miniaudio/miniaudio.h"

# --- 5. build ---
log "building ollama ${OLLAMA_VERSION} (cgo, CPU backend linked in; takes minutes on 2 cores)"
start=$SECONDS
(
	cd "$WORK/src"
	CGO_ENABLED=1 \
		CGO_CPPFLAGS="-I${STUB_INC}${CGO_CPPFLAGS:+ $CGO_CPPFLAGS}" \
		GOFLAGS="-mod=mod -buildvcs=false" \
		go build -trimpath \
		-ldflags "-s -w -X ${MODULE}/version.Version=${OLLAMA_VERSION#v}" \
		-o "$BIN.tmp" .
) >&2
mv -f "$BIN.tmp" "$BIN"
log "built in $((SECONDS - start))s"

binary_ok "$BIN" || die "built binary does not run: $BIN"
log "ok: $BIN"
echo "$BIN"
