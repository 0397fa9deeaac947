# python3 -c "$(cat unit_state.py)" UNIT PATH_GLOB...  ->  {"active", "enabled", "need_daemon_reload",
#                                                         "changed_since_start"}
# Whether a running unit has read the files it depends on: the ones modified after it last started
# (a run interrupted between writing a file and restarting the service leaves such files).
import glob, json, os, subprocess, sys, time  # noqa: E401 (one -c program)

unit, patterns = sys.argv[1], sys.argv[2:]
props = "ActiveState,UnitFileState,NeedDaemonReload,ActiveEnterTimestampMonotonic"
out = subprocess.run(["systemctl", "show", unit, "-p", props], capture_output=True, text=True).stdout
show = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
active = show.get("ActiveState") == "active"
entered = int(show.get("ActiveEnterTimestampMonotonic") or 0) / 1e6
started = time.time() - (time.clock_gettime(time.CLOCK_MONOTONIC) - entered)
paths = sorted({path for pattern in patterns for path in glob.glob(pattern)})
newer = [path for path in paths if active and os.stat(path).st_mtime > started]
state = {
    "active": active,
    "enabled": show.get("UnitFileState") == "enabled",
    "need_daemon_reload": show.get("NeedDaemonReload") == "yes",
}
print(json.dumps({**state, "changed_since_start": newer}))
