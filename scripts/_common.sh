# shellcheck shell=bash
# Shared by scripts/test, scripts/demo and .ci/run; sourced, never executed.
#
# Finds a Python interpreter, creates or reuses a virtualenv for it and installs the
# project into it: `pip install -e ".[dev]"` for the tests, less for the demo (see
# hm_setup). Written for bash 3.2 as well (macOS): no associative arrays, no
# ${var,,}, no mapfile.

HM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HM_STAMP_NAME=.hyperid-mfa-install

hm_log() { printf 'hyperid-mfa: %s\n' "$*" >&2; }
hm_die() {
    printf 'hyperid-mfa: error: %s\n' "$*" >&2
    exit 1
}

# Does "$1" run as a Python interpreter? (A pyenv shim for a version that is not
# selected exists on PATH but exits 127.)
hm_runs() {
    "$1" -c 'import sys' >/dev/null 2>&1
}

# hm_find_python SPEC: print the absolute path of a working interpreter.
#   SPEC is a version ("3.13"), a command ("python3.13") or a path.
# A command is looked up on PATH first; failing that, the version it names is
# looked for where pyenv, Homebrew and python.org installers put interpreters.
hm_find_python() {
    local spec=$1 version="" cand="" found=""
    case $spec in
        [0-9]*) version=$spec; cand=python$spec ;;
        *)
            cand=$spec
            version=$(printf '%s\n' "$spec" | sed -n 's/^.*python\([0-9][0-9]*\.[0-9][0-9]*\)$/\1/p')
            ;;
    esac
    if command -v "$cand" >/dev/null 2>&1 && hm_runs "$(command -v "$cand")"; then
        found=$(command -v "$cand")
    elif [ -n "$version" ]; then
        local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv} dir patch best_patch=-1
        # Newest patch release of X.Y under pyenv (names like 3.13.1; skips 3.13.1t, -dev).
        for dir in "$pyenv_root"/versions/"$version".*; do
            [ -x "$dir/bin/python$version" ] || continue
            patch=${dir##*/"$version".}
            case $patch in '' | *[!0-9]*) continue ;; esac
            if [ "$patch" -gt "$best_patch" ]; then
                best_patch=$patch
                found=$dir/bin/python$version
            fi
        done
        if [ -z "$found" ]; then
            for cand in \
                "/usr/local/bin/python$version" \
                "/opt/homebrew/bin/python$version" \
                "/Library/Frameworks/Python.framework/Versions/$version/bin/python$version" \
                "/usr/bin/python$version"; do
                if [ -x "$cand" ] && hm_runs "$cand"; then
                    found=$cand
                    break
                fi
            done
        fi
    fi
    [ -n "$found" ] && hm_runs "$found" || return 1
    # Resolve shims and symlinks to the interpreter itself.
    "$found" -c 'import sys; print(sys.executable)'
}

# hm_django_spec VALUE: turn a HYPERID_MFA_DJANGO value into a pip requirement.
#   "5.2" -> "Django>=5.2,<5.3"    "6" -> "Django>=6,<7"    anything else: as given.
hm_django_spec() {
    local value=$1 major minor
    case $value in
        '') printf '\n' ;;
        *[!0-9.]*) printf '%s\n' "$value" ;;
        *.*)
            major=${value%%.*}
            minor=${value#*.}
            minor=${minor%%.*}
            printf 'Django>=%s.%s,<%s.%s\n' "$major" "$minor" "$major" "$((minor + 1))"
            ;;
        *) printf 'Django>=%s,<%s\n' "$value" "$((value + 1))" ;;
    esac
}

# hm_django_label VALUE: a short, path-safe name for a HYPERID_MFA_DJANGO value,
# used in the venv's directory name. "6.0" -> "6.0", "Django~=5.2.0" -> "5.2.0",
# "Django>=6.0,<6.1" -> "6.0_6.1". Two specs may share a label; the install stamp
# then notices the difference and reinstalls.
hm_django_label() {
    printf '%s\n' "$1" |
        sed -e 's/^[Dd][Jj][Aa][Nn][Gg][Oo]//' -e 's/[^A-Za-z0-9.][^A-Za-z0-9.]*/_/g' \
            -e 's/^_*//' -e 's/_*$//'
}

# hm_python_xy PYTHON: "3.13"
hm_python_xy() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# hm_ensure_venv PYTHON VENV DJANGO_SPEC [PIP_ARG...]
# Create VENV with PYTHON unless it exists with the same interpreter version, then
# install into it, unless the stamp says this exact install is already there:
# `pip install PIP_ARG... DJANGO_SPEC`, run in HM_ROOT (default PIP_ARGs: -e ".[dev]").
# The stamp (scripts/_install_stamp.py) hashes pyproject.toml, setup.cfg, the Django
# spec, the interpreter, and the PIP_ARGs with the requirement files they name.
hm_ensure_venv() {
    local py=$1 venv=$2 django_spec=$3
    shift 3
    local vpy=$venv/bin/python want_version have_version stamp
    want_version=$("$py" -c 'import sys; print(sys.version)')
    if [ -e "$venv" ]; then
        have_version=$("$vpy" -c 'import sys; print(sys.version)' 2>/dev/null || true)
        if [ "$have_version" != "$want_version" ]; then
            hm_log "recreating $venv (its interpreter is gone or is another version)"
            rm -rf "$venv"
        fi
    fi
    if [ ! -e "$venv" ]; then
        hm_log "creating $venv with $py"
        mkdir -p "$(dirname "$venv")"
        "$py" -m venv "$venv" ||
            hm_die "could not create a virtualenv with $py (on Debian/Ubuntu: apt-get install python3-venv)"
        "$vpy" -m pip install --quiet --upgrade pip ||
            hm_log "could not upgrade pip in $venv; going on with the bundled one"
    fi
    # Without PIP_ARGs the stamp is the one of the venvs made before they existed.
    stamp=$("$py" "$HM_ROOT/scripts/_install_stamp.py" "$HM_ROOT" "$django_spec" "$@")
    [ $# -gt 0 ] || set -- -e ".[dev]"
    if [ "$(cat "$venv/$HM_STAMP_NAME" 2>/dev/null || true)" = "$stamp" ]; then
        return 0
    fi
    hm_log "installing into $venv: $*${django_spec:+ $django_spec}"
    rm -f "$venv/$HM_STAMP_NAME"
    [ -z "$django_spec" ] || set -- "$@" "$django_spec"
    # -qq: quiet down to errors; some machines' pip configuration warns about
    # missing local index directories for every package it looks at.
    (
        cd "$HM_ROOT"
        "$vpy" -m pip install -qq --progress-bar off "$@"
    ) || hm_die "pip install into $venv failed"
    printf '%s\n' "$stamp" >"$venv/$HM_STAMP_NAME"
}

# hm_setup [dev|demo]: read the HYPERID_MFA_PYTHON / HYPERID_MFA_DJANGO knobs, make
# the venv ready and set HM_PY (the base interpreter), HM_VENV, HM_VPY (the venv's
# python) and HM_DJANGO_SPEC.
#
#   dev (default)  for the tests and the linters: `pip install -e ".[dev]"`, in .venv,
#                  or .venvs/py3.13-django6.0 and the like when a knob is set.
#   demo           for ./scripts/demo: only what the example project needs, the app
#                  with its openapi and allauth extras and
#                  example_project/requirements.txt, in .venvs/demo (or
#                  .venvs/demo-py3.13-django6.0 and the like).
#
# HYPERID_MFA_VENV=DIR instead uses an existing virtualenv exactly as it is: nothing
# is created or installed, the two knobs are ignored. For tests that run these
# scripts in a scratch clone with the environment that runs the tests: installing
# would point that environment's editable install at the scratch clone.
hm_setup() {
    local kind=${1:-dev} python_knob=${HYPERID_MFA_PYTHON:-} django_knob=${HYPERID_MFA_DJANGO:-}
    local xy name
    case $kind in
        dev) set -- ;;
        demo) set -- -e ".[openapi,allauth]" -r example_project/requirements.txt ;;
        *) hm_die "hm_setup: unknown kind '$kind'" ;;
    esac
    if [ -n "${HYPERID_MFA_VENV:-}" ]; then
        HM_VENV=$(cd "$HYPERID_MFA_VENV" 2>/dev/null && pwd) ||
            hm_die "HYPERID_MFA_VENV: no such directory: $HYPERID_MFA_VENV"
        HM_VPY=$HM_VENV/bin/python
        hm_runs "$HM_VPY" || hm_die "HYPERID_MFA_VENV: $HM_VPY is not a working Python"
        # shellcheck disable=SC2034 # read by the scripts that source this file
        HM_PY=$HM_VPY HM_DJANGO_SPEC=""
        return 0
    fi
    HM_PY=$(hm_find_python "${python_knob:-python3}") ||
        hm_die "no working Python interpreter for '${python_knob:-python3}' (HYPERID_MFA_PYTHON)"
    "$HM_PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        hm_die "$HM_PY is Python $(hm_python_xy "$HM_PY"); this project needs 3.10 or newer"
    HM_DJANGO_SPEC=$(hm_django_spec "$django_knob")
    if [ -z "$python_knob" ] && [ -z "$django_knob" ]; then
        case $kind in
            dev) HM_VENV=$HM_ROOT/.venv ;;
            demo) HM_VENV=$HM_ROOT/.venvs/demo ;;
        esac
    else
        xy=$(hm_python_xy "$HM_PY")
        name=py$xy
        [ "$kind" = dev ] || name=$kind-$name
        if [ -n "$django_knob" ]; then
            name=$name-django$(hm_django_label "$django_knob")
        fi
        HM_VENV=$HM_ROOT/.venvs/$name
    fi
    # shellcheck disable=SC2034 # read by the scripts that source this file
    HM_VPY=$HM_VENV/bin/python
    hm_ensure_venv "$HM_PY" "$HM_VENV" "$HM_DJANGO_SPEC" "$@"
}
