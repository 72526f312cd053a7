"""p50/p99 of case-list and work-list queries over HTTP on a data directory.

Usage: python3 projections/bench/latency.py DATA_DIR [N]  (N requests per query, default 50)
With CLIENTS=K in the environment it then also runs every query mixed from K clients at once.
DATA_DIR is typically made by `minqing generate --data DATA_DIR --cases N` followed by
`minqing rebuild --data DATA_DIR`; the citizen-history query uses the caller with the most
cases in the read model (a generated year has frequent callers). MINQING_DEMO_PASSWORD must be
the password the directory was seeded with (default demo-12345, as for generate and serve).
For `GET /api/v1/worklist/counts` the `total` printed is the sum of the counts.
"""
import json, os, sqlite3, subprocess, sys, time, urllib.request, urllib.parse, signal, statistics
data = sys.argv[1]
read_db = sqlite3.connect(os.path.join(data, 'read.db'))
phone = read_db.execute('SELECT caller_phone FROM case_list GROUP BY caller_phone ORDER BY count(*) DESC LIMIT 1').fetchone()[0]
read_db.close()
exe = os.environ.get('MINQING_BIN', 'target/debug/minqing')
password = os.environ.get('MINQING_DEMO_PASSWORD', 'demo-12345')
env = dict(os.environ, MINQING_DEMO_PASSWORD=password, RUST_LOG='warn')
p = subprocess.Popen([exe, 'serve', '--addr', '127.0.0.1:0', '--data', data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
base = p.stdout.readline().strip().split('on ')[1]
def stop():
    p.send_signal(signal.SIGTERM); p.wait()
import atexit; atexit.register(stop)
def call(method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header('content-type', 'application/json')
    if token: req.add_header('authorization', 'Bearer ' + token)
    with urllib.request.urlopen(req) as r: return json.loads(r.read() or b'{}')
tok = {u: call('POST', '/api/v1/auth/login', body={'username': u, 'password': password})['token'] for u in ['city_leader', 'dispatcher', 'chengguan_dispatcher', 'chengguan_s01_handler', 'housing_handler', 'supervisor', 'operator']}
cases = [
  ('city_leader', '/api/v1/cases?district=d.chengguan&status=transferred&category=complaint&per_page=20'),
  ('city_leader', '/api/v1/cases?per_page=20'),
  ('chengguan_dispatcher', '/api/v1/cases?per_page=20'),
  ('chengguan_dispatcher', '/api/v1/cases?overdue=true&per_page=20'),
  ('chengguan_dispatcher', '/api/v1/cases?status=in_progress&category=complaint&per_page=20'),
  ('chengguan_s01_handler', '/api/v1/cases?per_page=20'),
  ('chengguan_s01_handler', '/api/v1/cases?overdue=true&per_page=20'),
  ('city_leader', '/api/v1/cases?q=' + urllib.parse.quote('暖气不热') + '&per_page=20'),
  ('chengguan_dispatcher', '/api/v1/cases?q=' + urllib.parse.quote('小区门口有人摆摊') + '&per_page=20'),
  ('chengguan_dispatcher', '/api/v1/cases?q=' + urllib.parse.quote('楼上装修太吵了') + '&status=in_progress&per_page=20'),
  ('chengguan_s01_handler', '/api/v1/cases?q=' + urllib.parse.quote('噪音') + '&overdue=true&per_page=20'),
  ('city_leader', '/api/v1/cases?q=' + urllib.parse.quote('停水') + '&sort=-created_at&per_page=20'),
  ('housing_handler', '/api/v1/worklist?list=to_receive'),
  ('chengguan_dispatcher', '/api/v1/worklist?list=in_progress'),
  ('chengguan_dispatcher', '/api/v1/worklist?list=due_soon'),
  ('chengguan_dispatcher', '/api/v1/worklist?list=transferred_by_me'),
  ('dispatcher', '/api/v1/worklist?list=transferred_by_me'),
  ('supervisor', '/api/v1/worklist?list=overdue'),
  ('operator', '/api/v1/cases?caller_phone=' + urllib.parse.quote(phone) + '&per_page=20'),
  ('dispatcher', '/api/v1/worklist?list=to_transfer'),
  ('dispatcher', '/api/v1/worklist?list=to_decide'),
  ('operator', '/api/v1/worklist?list=to_call_back'),
  ('housing_handler', '/api/v1/worklist?list=to_decide'),
] + [(u, '/api/v1/worklist/counts') for u in ['dispatcher', 'operator', 'chengguan_dispatcher', 'chengguan_s01_handler', 'housing_handler', 'supervisor', 'city_leader']]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
for user, path in cases:
    lat = []; total = None
    for _ in range(n):
        t = time.perf_counter(); r = call('GET', path, tok[user]); lat.append((time.perf_counter() - t) * 1000); total = r['total'] if 'total' in r else sum(v for k, v in r.items() if isinstance(v, int) and k != 'position')
    lat.sort()
    print(f"{user:22} {path:80} total={total:>7} p50={lat[len(lat)//2]:7.1f} ms p99={lat[int(len(lat)*0.99)-1]:7.1f} ms")

# CLIENTS=K: then every query above at once from K clients (each takes the next query in
# turn, N rounds), as a centre's many users would: throughput and the latency they see.
clients = int(os.environ.get('CLIENTS', '0'))
if clients:
    import threading
    lat = []; lock = threading.Lock()
    def client(k):
        mine = []
        for i in range(n):
            user, path = cases[(k + i) % len(cases)]
            t = time.perf_counter(); call('GET', path, tok[user]); mine.append((time.perf_counter() - t) * 1000)
        with lock: lat.extend(mine)
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    took = time.perf_counter() - start
    lat.sort()
    print(f"{clients} clients, the queries above mixed: {len(lat)} requests in {took:.1f} s = {len(lat)/took:.0f}/s p50={lat[len(lat)//2]:.1f} ms p99={lat[int(len(lat)*0.99)-1]:.1f} ms")
