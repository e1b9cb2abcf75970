#!/usr/bin/env python3
"""Side by side: the Targets rows of two BENCHMARKS.md files (label | before | after), e.g.
`python3 scripts/bench-compare.py <(git show REV:BENCHMARKS.md) BENCHMARKS.md`."""
import sys
def rows(path):
    out=[]; section=''; in_targets=False; blocks=''
    for line in open(path):
        if line.startswith('## '): section=line[3:].strip(); in_targets=False; blocks=''
        if line.startswith('Devnet with') and 'ms blocks' in line:
            blocks=' (1 s blocks)' if '1000 ms blocks' in line else ' (200 ms blocks)'
        if line.startswith('#') and 'Targets' in line: in_targets=True; continue
        if in_targets and line.startswith('| ') and not line.startswith('| Target') :
            cells=[c.strip() for c in line.strip().strip('|').split('|')]
            if len(cells)>=4 and not set(cells[0])<=set('-'):
                tag=blocks if section.startswith('Liquidations') else ''
                out.append((cells[0]+tag, cells[2]+' — '+cells[3]))
    return out
before=rows(sys.argv[1]); after=dict()
after_rows=rows(sys.argv[2])
print('| Target | before (previous issue) | after (this change) |\n|---|---|---|')
used=set()
for i,(label,val) in enumerate(before):
    match=next((j for j,(l,_) in enumerate(after_rows) if l==label and j not in used), None)
    if match is not None: used.add(match)
    print(f'| {label} | {val} | {after_rows[match][1] if match is not None else "—"} |')
