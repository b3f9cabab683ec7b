#!/usr/bin/env bash
# The conventions CI enforces, besides the tests (CONTRIBUTING.md):
#
#   fmt      cargo fmt --all -- --check
#   clippy   cargo clippy --workspace --all-targets -- -D warnings
#   doc      RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
#   machete  cargo machete              (no unused dependency)
#   deny     cargo deny check licenses bans   (deny.toml)
#
# scripts/checks.sh runs them all; scripts/checks.sh clippy doc runs some.
# Every step runs even when an earlier one failed; each failure is named,
# and the script exits non-zero if any step failed. cargo-machete and
# cargo-deny are installed (pinned, --locked) only when absent.
#
# The pure core (lhcie-model, lhcie-consent, lhcie-hub-core reach no I/O,
# runtime, socket or storage crate) is a test: hub/core/tests/pure_core.rs,
# run by `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
CARGO_MACHETE_VERSION=0.9.2
CARGO_DENY_VERSION=0.20.2
export PATH="$HOME/.cargo/bin:$PATH"

# ensure_tool BINARY CRATE VERSION: cargo install the crate if BINARY is not
# on PATH (a fresh machine; installing takes minutes: cargo-machete about 2,
# cargo-deny about 5 on 2 cores).
ensure_tool() {
    local binary=$1 crate=$2 version=$3
    command -v "$binary" >/dev/null 2>&1 && return 0
    echo "checks: $binary not found; cargo install --locked $crate@$version"
    local start=$SECONDS
    if ! "$CARGO" install --locked "$crate" --version "$version"; then
        reason="could not install $crate $version (cargo install --locked failed, see above)"
        return 1
    fi
    echo "checks: installed $crate $version in $((SECONDS - start)) s"
}

step_fmt() {
    "$CARGO" fmt --all -- --check
}

step_clippy() {
    "$CARGO" clippy --workspace --all-targets -- -D warnings
}

step_doc() {
    RUSTDOCFLAGS="-D warnings" "$CARGO" doc --workspace --no-deps
}

step_machete() {
    ensure_tool cargo-machete cargo-machete "$CARGO_MACHETE_VERSION" || return 1
    "$CARGO" machete
}

step_deny() {
    ensure_tool cargo-deny cargo-deny "$CARGO_DENY_VERSION" || return 1
    # Only licences and bans: advisories would fetch a database this
    # machine cannot reach. The inclusion graphs of the duplicate-version
    # warnings run to thousands of lines; the warnings themselves stay.
    "$CARGO" deny check --hide-inclusion-graph licenses bans
}

# What to do about a failure, printed with it.
hint() {
    case $1 in
        fmt) echo "run \`cargo fmt --all\` and commit the result" ;;
        clippy) echo "fix the lints above (warnings are errors)" ;;
        doc) echo "fix the rustdoc warnings above (broken intra-doc links, bad HTML, ...)" ;;
        machete) echo "remove the unused dependency from that crate's Cargo.toml, or, if it is a false positive, add it to [package.metadata.cargo-machete] ignored with a comment saying why" ;;
        deny) echo "a licence not allowed in deny.toml, an allowed licence nothing uses, or a banned crate (aws-lc-rs, aws-lc-sys, openssl, openssl-sys): see deny.toml" ;;
    esac
}

all_steps=(fmt clippy doc machete deny)
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=("${all_steps[@]}")
for step in "${steps[@]}"; do
    if ! declare -F "step_$step" >/dev/null; then
        echo "checks: unknown step '$step' (steps: ${all_steps[*]})" >&2
        exit 2
    fi
done

failed=()
total=$SECONDS
for step in "${steps[@]}"; do
    echo "checks: == $step"
    start=$SECONDS
    reason=""
    if "step_$step"; then
        echo "checks: $step passed in $((SECONDS - start)) s"
    else
        echo "checks: FAILED: $step, after $((SECONDS - start)) s: ${reason:-$(hint "$step")}"
        failed+=("$step")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "checks: FAILED: ${failed[*]} (of ${steps[*]}) in $((SECONDS - total)) s"
    exit 1
fi
echo "checks: all passed (${steps[*]}) in $((SECONDS - total)) s"
