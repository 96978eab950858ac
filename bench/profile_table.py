#!/usr/bin/env python3
"""Where kube-apiserver's CPU per pod goes, from the profiles `make bench-shapes` writes.

Usage: bench/profile_table.py DIR CLIENTS VARIANT:PODS...

DIR holds `<clients>c-<variant>-<n>.pb.gz` (target/bench-shapes/profiles); PODS is the pods
column of the run's "Long windows" table (summed over the runs whose windows DIR holds, renamed
to distinct n). For each variant, all its windows' profiles are merged
(`go tool pprof`, Go on PATH) and the cumulative time of the functions below is divided by the
pods: a Markdown table, milliseconds of kube-apiserver CPU per pod. Rows starting with ".." are
measured inside the mutating webhook call only (`-focus`), so they do not count the same
function's work elsewhere in the request (e.g. decoding the client's body).
"""
import glob, re, subprocess, sys

d, c = sys.argv[1], sys.argv[2]
profs = [a.split(':') for a in sys.argv[3:]]
hook = r'mutatingDispatcher\)\.callAttrMutatingHook$'
fns = [
 ('total (all samples)', None, None),
 ('mutating webhook admission (Plugin.Admit)', r'mutating\.\(\*Plugin\)\.Admit$', None),
 ('. callAttrMutatingHook', hook, None),
 ('.. webhook HTTP call + response decode', r'callAttrMutatingHook\.func3$', hook),
 ('.. AdmissionReview request encode', r'client-go/rest\.\(\*Request\)\.Body$', hook),
 ('.. DecodePatch', r'json-patch%2ev4\.DecodePatch$', hook),
 ('.. object to JSON (runtime.Encode)', r'k8s\.io/apimachinery/pkg/runtime\.Encode$', hook),
 ('.. Patch.Apply (json-patch v4)', r'json-patch%2ev4\.Patch\.Apply$', hook),
 ('.. JSON to typed Pod (Serializer.Decode)', r'serializer/json\.\(\*Serializer\)\.Decode$', hook),
 ('.. Semantic.DeepEqual old/new', r'reflect\.Equalities\.DeepEqual$', hook),
 ('.. addPatchAnnotation (re-marshals the patch)', r'addPatchAnnotation$', hook),
 ('.. warning.AddWarning', r'warning\.AddWarning$', hook),
 ('.. Scheme.Default', r'runtime\.\(\*Scheme\)\.Default$', hook),
 ('managedFields (FieldManager.Update)', r'managedfields/internal\.\(\*FieldManager\)\.Update$', None),
 ('Store.create (validation, storage, watch cache)', r'registry\.\(\*Store\)\.create$', None),
 ('response to the client (transformResponseObject)', r'handlers\.transformResponseObject$', None),
 ('GC background mark (gcBgMarkWorker)', r'runtime\.gcBgMarkWorker$', None),
 ('allocation (mallocgc, all callers)', r'runtime\.mallocgc$', None),
]
def secs(v):
    return float(v[:-2])/1000 if v.endswith('ms') else float(v[:-1])
cache = {}
def table(name, focus):
    key = (name, focus)
    if key in cache: return cache[key]
    files = sorted(glob.glob(f'{d}/{c}c-{name}-[0-9]*.pb.gz'))
    args = ['go','tool','pprof','-top','-cum','-nodecount=100000','-nodefraction=0','-edgefraction=0']
    if focus: args.append(f'-focus={focus}')
    out = subprocess.run(args + files, capture_output=True, text=True).stdout
    total = secs(re.search(r'Total samples = (\S+)', out).group(1))
    rows = {}
    for line in out.splitlines():
        p = line.split(None, 5)
        if len(p) == 6 and p[0][0].isdigit() and p[3][-1] == 's':
            rows.setdefault(p[5].replace(' (inline)',''), secs(p[3]))
    cache[key] = (total, rows)
    return cache[key]
print(f'| kube-apiserver CPU at {c} client(s), ms/pod (cumulative, merged profiles) | ' + ' | '.join(n for n,p in profs) + ' |')
print('| --- |' + ' --- |'*len(profs))
for label, rx, focus in fns:
    cells = []
    for name, pods in profs:
        total, rows = table(name, focus)
        if rx is None: v = total
        else: v = next((s for f, s in rows.items() if re.search(rx, f)), 0.0)
        cells.append(f'{v*1000/int(pods):.3f}')
    print(f'| {label} | ' + ' | '.join(cells) + ' |')
