"""`dlcheck fleet --html FILE`: the fleet report as one self-contained page.

Everything is inline (CSS, a small script, SVG plots); a Content-Security-Policy allows no
network at all and only this page's own script and style (by their SHA-256), so the page works
offline and a string that slipped through escaping still could not run. Every string from a
report is untrusted and passes html.escape here; the script reads them only as text.
The file is written next to its final name and renamed over it: a reader never sees half a page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from statistics import median

from dlcheck.files import write_atomically
from dlcheck.fleet import STATES
from dlcheck.models import Report

STATE_CLASS = {"ready": "ok", "cpu_only": "cpu"}  # every other state: "bad"
COLUMNS = ("host", "state", "warnings", "GPUs", "best speedup", "perf", "smoke", "driver",
           "CUDA", "frameworks", "changes")  # fmt: skip

CSS = """
:root{--ok:#1a7f37;--cpu:#9a6700;--bad:#cf222e;--mute:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:16px;
max-width:1400px;color:#1f2328}h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 8px}
.sub{color:var(--mute);margin:0 0 12px}#summary{display:flex;flex-wrap:wrap;gap:8px}
.card{border:1px solid var(--line);border-radius:6px;background:var(--bg);padding:6px 12px;
cursor:pointer;font:inherit;text-align:left}.card b{display:block;font-size:22px}
.card.ok b{color:var(--ok)}.card.cpu b{color:var(--cpu)}.card.bad b{color:var(--bad)}
.controls{display:flex;gap:12px;align-items:center;margin:16px 0 8px;flex-wrap:wrap}
input[type=search]{width:320px;padding:4px 8px;font:inherit}select{font:inherit}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--line);
padding:4px 8px;text-align:left;vertical-align:top}th button{font:inherit;font-weight:600;
border:0;background:none;cursor:pointer;padding:0}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}td.n{text-align:right}
.st{font-weight:600}.st.ok{color:var(--ok)}.st.cpu{color:var(--cpu)}.st.bad{color:var(--bad)}
button.x{border:0;background:none;cursor:pointer;font:inherit;padding:0;color:#0969da}
tr.more>td{background:var(--bg)}.more h3{font-size:13px;margin:8px 0 4px}
.more table{width:auto}
code{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.PASS,.better{color:var(--ok)}.WARN{color:var(--cpu)}.FAIL,.worse{color:var(--bad)}
.INFO,.SKIP,.changed{color:var(--mute)}ul{margin:4px 0;padding-left:20px}
svg text{font:11px system-ui,sans-serif;fill:#1f2328}svg .ax{stroke:var(--line)}
svg .bar{fill:#0969da}svg .hi{fill:var(--bad)}svg .med{stroke:#1f2328}.empty{color:var(--mute)}
"""

# Sorting, filtering and the per-host plot; strings from reports are only ever set as text.
SCRIPT = """
(()=>{
const table=document.getElementById('hosts'),hosts=[...table.tBodies],
q=document.getElementById('filter'),st=document.getElementById('state'),
ch=document.getElementById('changed'),shown=document.getElementById('shown');
function apply(){const t=q.value.trim().toLowerCase();let n=0;
for(const h of hosts){const ok=(!t||h.dataset.text.includes(t))
&&(!st.value||h.dataset.state===st.value)
&&(!ch.checked||h.dataset.changes!=='0');h.hidden=!ok;if(ok)n++}
shown.textContent=n+' of '+hosts.length+' hosts shown'}
q.addEventListener('input',apply);st.addEventListener('change',apply);
ch.addEventListener('change',apply);
for(const c of document.querySelectorAll('.card[data-state]'))c.addEventListener('click',()=>{
st.value=c.dataset.state;apply()});
let key=-1,dir=1;const heads=[...table.tHead.rows[0].cells];
function val(h,i){const c=h.rows[0].cells[i];
return c.dataset.v!==undefined?c.dataset.v:c.textContent}
function cmp(a,b){if(a===''||b==='')return a===b?0:a===''?1:-1;const x=Number(a),y=Number(b);
if(!isNaN(x)&&!isNaN(y))return (x-y)*dir;return a.localeCompare(b,undefined,{numeric:true})*dir}
heads.forEach((th,i)=>th.querySelector('button').addEventListener('click',()=>{
dir=key===i?-dir:1;key=i;const sorted=[...hosts].sort((a,b)=>cmp(val(a,i),val(b,i)));
for(const h of sorted)table.appendChild(h);
heads.forEach((o,j)=>o.setAttribute('aria-sort',j===i?(dir>0?'ascending':'descending'):'none'))}));
table.addEventListener('click',e=>{const b=e.target.closest('button.x');if(!b)return;
const h=b.closest('tbody'),more=h.rows[1];more.hidden=!more.hidden;
b.setAttribute('aria-expanded',String(!more.hidden));if(!more.hidden)plot(h)});
const NS='http://www.w3.org/2000/svg';
function el(name,attrs,text){const e=document.createElementNS(NS,name);
for(const k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e}
function plot(h){const box=h.querySelector('.plot');if(!box||box.dataset.done)return;
box.dataset.done='1';
const rows=JSON.parse(box.dataset.bench);if(!rows.length)return;
const top=Math.max(...rows.map(r=>r[4]||r[2]||0))||1,W=460,L=150,H=18*rows.length+24;
const s=el('svg',{width:W,height:H,viewBox:'0 0 '+W+' '+H,role:'img'});
s.appendChild(el('title',{},'Median epoch seconds per implementation and device'));
rows.forEach((r,i)=>{const y=4+18*i,x=v=>L+(W-L-60)*v/top;
s.appendChild(el('text',{x:0,y:y+12},r[0]+' on '+r[1]));
if(r[2]===null){s.appendChild(el('text',{x:L,y:y+12,class:'FAIL'},'no result'));return}
s.appendChild(el('rect',{x:L,y:y+2,width:Math.max(1,x(r[2])-L),height:12,class:'bar'}));
if(r[3]!==null&&r[4]!==null)
s.appendChild(el('line',{x1:x(r[3]),x2:x(r[4]),y1:y+8,y2:y+8,class:'med'}));
s.appendChild(el('text',{x:x(r[4]||r[2])+4,y:y+12},r[2].toPrecision(3)+' s'))});
s.appendChild(el('text',{x:L,y:H-4},
'seconds per epoch (bar: median, line: fastest to slowest epoch)'));
box.appendChild(s)}
apply()})();
"""


def write_html(report: Report, path: Path) -> None:
    """Write the page to `path` atomically (a temp file in the same folder, then rename)."""
    page = render_html(report)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)  # --html site/fleet/index.html: like mkdir -p
    write_atomically(path, page)


def render_html(report: Report) -> str:
    data = report.data
    rows, counts, history = data.rows, data.summary, data.history
    changes_by_host = defaultdict(list)
    for change in data.changes:
        changes_by_host[change.host].append(change)
    parts = [
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_policy()}\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>dlcheck fleet{' ' + escape(history.run) if history.run else ''}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>dlcheck fleet</h1>",
        f"<p class=\"sub\">{_subtitle(history, len(data.changes))}</p>",
        _summary(counts, len(data.changes)),
        _changes_section(data.changes, history),
        _fleet_plot(rows),
        "<h2>Hosts</h2>",
        "<div class=\"controls\"><input id=\"filter\" type=\"search\" "
        "placeholder=\"filter: host, GPU, driver, check code...\" aria-label=\"filter hosts\">",
        "<select id=\"state\" aria-label=\"state\"><option value=\"\">every state</option>",
        *(f"<option>{state}</option>" for state in STATES),
        "</select><label><input id=\"changed\" type=\"checkbox\"> changed only</label>",
        "<span id=\"shown\" class=\"sub\"></span></div>",
        "<table id=\"hosts\"><thead><tr>",
        *(f"<th aria-sort=\"none\"><button type=\"button\">{escape(name)}</button></th>"
          for name in COLUMNS),  # fmt: skip
        "</tr></thead>",
        *(_host(row, changes_by_host.get(row.host, [])) for row in rows),
        "</table>",
        f"<script>{SCRIPT}</script></body></html>\n",
    ]
    return "".join(parts)


def _digest(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _policy() -> str:
    return (f"default-src 'none'; style-src 'sha256-{_digest(CSS)}'; "
            f"script-src 'sha256-{_digest(SCRIPT)}'; img-src data:")  # fmt: skip


def _subtitle(history, changes: int) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if history.layout != "runs":
        return f"one run (no history kept); written {stamp}"
    text = f"run {escape(history.run)} (latest of {len(history.runs)})"
    if history.baseline:
        text += (f", compared with {escape(history.baseline)}: "
                 f"{changes} change{'s' if changes != 1 else ''}")
    if history.note:
        text += f"; {escape(history.note)}"
    return f"{text}; written {stamp}"


def _summary(counts: dict[str, int], changes: int) -> str:
    cards = [f"<button class=\"card\" data-state=\"\" id=\"n-hosts\"><b>{counts['hosts']}</b>"
             "hosts</button>"]  # fmt: skip
    for state in STATES:
        css = STATE_CLASS.get(state, "bad")
        cards.append(f"<button class=\"card {css}\" data-state=\"{state}\" id=\"n-{state}\">"
                     f"<b>{counts[state]}</b>{state.replace('_', ' ')}</button>")  # fmt: skip
    cards.append(f"<div class=\"card\" id=\"n-changes\"><b>{changes}</b>changes</div>")
    return f"<section id=\"summary\">{''.join(cards)}</section>"


def _changes_section(changes: list, history) -> str:
    if not history.baseline:
        return ""
    if not changes:
        return f"<h2>Changes since {escape(history.baseline)}</h2><p class=\"empty\">none</p>"
    body = "".join(
        f"<tr class=\"{c.effect}\"><td>{escape(c.host)}</td><td>{c.kind}</td>"
        f"<td>{escape(c.subject)}</td><td>{escape(c.before or '-')}</td>"
        f"<td>{escape(c.after or '-')}</td><td>{escape(c.detail)}</td></tr>"
        for c in changes
    )
    return (f"<h2>Changes since {escape(history.baseline)}</h2><table id=\"changes\"><thead><tr>"
            "<th>host</th><th>change</th><th>what</th><th>before</th><th>after</th>"
            f"<th>detail</th></tr></thead><tbody>{body}</tbody></table>")  # fmt: skip


def _cell(text: str, value=None, numeric: bool = False) -> str:
    sort = "" if value is None else f" data-v=\"{escape(str(value))}\""
    right = " class=\"n\"" if numeric else ""
    return f"<td{sort}{right}>{escape(text)}</td>"


def _host(row, changes: list) -> str:
    css = STATE_CLASS.get(row.state, "bad")
    gpus = _gpus(row)
    best = row.best_speedup
    smoke = (f"{row.smoke['passed']}/{row.smoke['failed'] + row.smoke['error']}/"
             f"{row.smoke['skipped']}" if row.smoke else "N/A")  # fmt: skip
    frameworks = ", ".join(f"{name} {label}" for name, label in row.frameworks.items()) or "N/A"
    searchable = " ".join([row.host, row.state, gpus, row.driver or "", row.cuda or "",
                           frameworks, *row.warning_codes, *row.problems,
                           *(c.kind + " " + c.subject for c in changes)]).lower()  # fmt: skip
    cells = [
        f"<td><button type=\"button\" class=\"x\" aria-expanded=\"false\">{escape(row.host)}"
        "</button></td>",
        f"<td data-v=\"{STATES.index(row.state)}\" class=\"st {css}\">{row.state}</td>",
        _cell(", ".join(row.warning_codes) or "0", len(row.warnings)),
        _cell(gpus, len(row.gpus)),
        _cell(f"{best:.1f}x" if best is not None else "N/A", "" if best is None else best, True),
        _cell(row.perf or "N/A"),
        _cell(smoke, row.smoke.get("failed", 0) + row.smoke.get("error", 0) if row.smoke else ""),
        _cell(row.driver or "N/A"),
        _cell(row.cuda or "N/A"),
        _cell(frameworks),
        _cell(str(len(changes)), len(changes), True),
    ]
    return (f"<tbody data-state=\"{row.state}\" data-changes=\"{len(changes)}\" "
            f"data-text=\"{escape(searchable)}\"><tr>{''.join(cells)}</tr>"
            f"<tr class=\"more\" hidden><td colspan=\"{len(COLUMNS)}\">{_details(row, changes)}"
            "</td></tr></tbody>")  # fmt: skip


def _gpus(row) -> str:
    if not row.gpus:
        return "0" if row.verdict else "N/A"
    names = sorted(set(row.gpus))
    return f"{len(row.gpus)} x {names[0]}" if len(names) == 1 else f"{len(row.gpus)} (mixed)"


def _details(row, changes: list) -> str:
    parts = []
    if row.problems:
        parts.append("<h3>Problems</h3><ul>"
                     + "".join(f"<li>{escape(p)}</li>" for p in row.problems)
                     + "</ul>")  # fmt: skip
    if changes:
        parts.append("<h3>Changes</h3><ul>" + "".join(
            f"<li class=\"{c.effect}\">{escape(c.line)}</li>" for c in changes) + "</ul>")
    shown = [c for c in row.checks if c["status"] != "PASS"]
    passed = [c["code"] for c in row.checks if c["status"] == "PASS"]
    if row.checks:
        rows = "".join(
            f"<tr><td class=\"{c['status']}\">{c['status']}</td><td>{escape(c['code'])}</td>"
            f"<td>{escape(c['message'])}</td>"
            f"<td>{'<code>' + escape(c['fix']) + '</code>' if c['fix'] else ''}</td></tr>"
            for c in shown
        )
        table = (f"<table><tr><th>status</th><th>check</th><th>message</th><th>fix</th></tr>"
                 f"{rows}</table>" if shown else "")  # fmt: skip
        listed = f": {escape(', '.join(passed))}" if passed else ""
        parts.append(f"<h3>Checks</h3>{table}<p class=\"sub\">{len(passed)} passed{listed}</p>")
    if row.gpu_list:
        rows = "".join(
            f"<tr><td>{g['index']}</td><td>{escape(g['name'])}</td><td>{escape(g['id'])}</td>"
            f"<td>{'N/A' if g['memory_mib'] is None else str(g['memory_mib']) + ' MiB'}</td></tr>"
            for g in row.gpu_list
        )
        parts.append("<h3>GPUs</h3><table><tr><th>index</th><th>name</th><th>id (masked)</th>"
                     f"<th>memory</th></tr>{rows}</table>")  # fmt: skip
    if row.bench:
        points = [[b["impl"], b["device"], b["median_epoch_s"], b["min_epoch_s"],
                   b["max_epoch_s"]] for b in row.bench]  # fmt: skip
        parts.append("<h3>Benchmark</h3><div class=\"plot\" data-bench=\""
                     f"{escape(json.dumps(points))}\"></div>")  # fmt: skip
    return "".join(parts) or "<p class=\"empty\">no report details</p>"


def _fleet_plot(rows) -> str:
    """Per (implementation, device): a histogram of the hosts' median epoch times on a log
    axis, the fleet median, and the slowest host named. Its size does not grow with the fleet."""
    series = defaultdict(list)
    for row in rows:
        for bench in row.bench:
            if isinstance(bench["median_epoch_s"], (int, float)) and bench["median_epoch_s"] > 0:
                series[(bench["impl"], bench["device"])].append((bench["median_epoch_s"], row.host))
    if not series:
        return ""
    values = [v for points in series.values() for v, _ in points]
    low, high = math.log10(min(values)), math.log10(max(values))
    if high - low < 0.1:
        low, high = low - 0.05, high + 0.05
    bins, width, left, lane = 60, 560, 170, 44
    step = width / bins
    height = lane * len(series) + 30

    def x(value: float) -> float:
        return left + width * (math.log10(value) - low) / (high - low)

    out = [f"<h2>Benchmark: median epoch time per host</h2><svg id=\"fleet-plot\" "
           f"width=\"{left + width + 240}\" height=\"{height}\" role=\"img\"><title>Median epoch "
           "seconds of every host, per implementation and device (log scale)</title>"]  # fmt: skip
    for lane_index, ((impl, device), points) in enumerate(sorted(series.items())):
        top = 8 + lane * lane_index
        counts = [0] * bins
        for value, _ in points:
            counts[min(bins - 1, int((x(value) - left) / step))] += 1
        peak = max(counts)
        mid = median(v for v, _ in points)
        slowest = max(points)
        out.append(f"<text x=\"0\" y=\"{top + 20}\">{escape(impl)} on {escape(device)}</text>"
                   f"<text x=\"0\" y=\"{top + 34}\" class=\"sub\">{len(points)} hosts</text>")
        for number, count in enumerate(counts):
            if not count:
                continue
            tall = max(2.0, 32 * count / peak)
            edge = 10 ** (low + (high - low) * number / bins)
            css = "hi" if edge > mid * 1.10 else "bar"
            out.append(
                f"<rect class=\"{css}\" x=\"{left + number * step:.1f}\" "
                f"y=\"{top + 36 - tall:.1f}\""
                f" width=\"{step - 1:.1f}\" height=\"{tall:.1f}\"><title>{count} host"
                f"{'s' if count != 1 else ''} from {edge:.3g} s</title></rect>"
            )
        out.append(f"<line class=\"med\" x1=\"{x(mid):.1f}\" x2=\"{x(mid):.1f}\" y1=\"{top}\" "
                   f"y2=\"{top + 38}\"><title>fleet median {mid:.3g} s</title></line>"
                   f"<text x=\"{left + width + 8}\" y=\"{top + 20}\">median {mid:.3g} s</text>"
                   f"<text x=\"{left + width + 8}\" y=\"{top + 34}\">slowest {slowest[0]:.3g} s "
                   f"({escape(slowest[1][:24])})</text>")  # fmt: skip
    axis_y = height - 18
    out.append(f"<line class=\"ax\" x1=\"{left}\" x2=\"{left + width}\" y1=\"{axis_y}\" "
               f"y2=\"{axis_y}\"/>")  # fmt: skip
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        value = 10 ** (low + (high - low) * fraction)
        out.append(f"<text x=\"{left + width * fraction - 12:.1f}\" y=\"{axis_y + 14}\">"
                   f"{value:.3g} s</text>")  # fmt: skip
    out.append("</svg><p class=\"sub\">Red bins: more than 10% slower than the fleet median.</p>")
    return "".join(out)
