"""p50/p99 of case-list and work-list queries over HTTP on a data directory.

Usage: python3 projections/bench/latency.py DATA_DIR [N]  (N requests per query, default 50)
"""
import json, os, subprocess, sys, time, urllib.request, signal, statistics
data = sys.argv[1]
exe = os.environ.get('MINQING_BIN', 'target/debug/minqing')
env = dict(os.environ, MINQING_DEMO_PASSWORD='bench-12345', RUST_LOG='warn')
p = subprocess.Popen([exe, 'serve', '--addr', '127.0.0.1:0', '--data', data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
base = p.stdout.readline().strip().split('on ')[1]
def call(method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header('content-type', 'application/json')
    if token: req.add_header('authorization', 'Bearer ' + token)
    with urllib.request.urlopen(req) as r: return json.loads(r.read() or b'{}')
tok = {u: call('POST', '/api/v1/auth/login', body={'username': u, 'password': 'bench-12345'})['token'] for u in ['city_leader', 'chengguan_dispatcher', 'housing_handler', 'supervisor', 'operator']}
cases = [
  ('city_leader', '/api/v1/cases?district=d.chengguan&status=transferred&category=complaint&per_page=20'),
  ('city_leader', '/api/v1/cases?per_page=20'),
  ('chengguan_dispatcher', '/api/v1/cases?per_page=20'),
  ('chengguan_dispatcher', '/api/v1/cases?overdue=true&per_page=20'),
  ('city_leader', '/api/v1/cases?q=%E8%81%94%E5%8A%9E&per_page=20'),
  ('housing_handler', '/api/v1/worklist?list=to_receive'),
  ('chengguan_dispatcher', '/api/v1/worklist?list=in_progress'),
  ('supervisor', '/api/v1/worklist?list=overdue'),
  ('operator', '/api/v1/cases?caller_phone=13912345678&per_page=20'),
]
for user, path in cases:
    lat = []; total = None
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    for _ in range(n):
        t = time.perf_counter(); r = call('GET', path, tok[user]); lat.append((time.perf_counter() - t) * 1000); total = r.get('total')
    lat.sort()
    print(f"{user:22} {path:80} total={total:>7} p50={lat[len(lat)//2]:7.1f} ms p99={lat[int(len(lat)*0.99)-1]:7.1f} ms")
p.send_signal(signal.SIGTERM); p.wait()
