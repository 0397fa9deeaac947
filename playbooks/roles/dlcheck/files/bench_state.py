# python3 -c "$(cat bench_state.py)" VENV INSTALLED_DIGEST_FILE STATE_DIR BENCH_ARGS_JSON
# The benchmark's inputs as one fingerprint: its arguments, every distribution in the venv
# (frameworks, dlcheck), the installed dlcheck's source digest and the loaded driver. When it
# equals the one stored next to the last report, that report still holds: {"current": true, ...}.
import glob, hashlib, json, os, sys  # noqa: E401 (one -c program)

venv, digest_file, state_dir, args = sys.argv[1:]
os.makedirs(state_dir, mode=0o755, exist_ok=True)  # the new report goes there
digest = hashlib.sha256(args.encode())
for info in sorted(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "*.dist-info"))):
    digest.update(os.path.basename(info).encode())
for path in (digest_file, "/proc/driver/nvidia/version"):
    try:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    except OSError:
        digest.update(b"-")
fingerprint = digest.hexdigest()[:16]


def read(name):
    try:
        with open(os.path.join(state_dir, name), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


report = read("bench.json") if (read("bench.inputs") or "").strip() == fingerprint else None
print(json.dumps({"fingerprint": fingerprint, "current": report is not None, "report": report}))
