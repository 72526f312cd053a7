"""Synthetic event store for `minqing rebuild` and query benchmarks.

Usage (from the repository root): python3 projections/bench/mkstore.py DATA_DIR COPIES
Starts `minqing serve` on DATA_DIR, drives three real case flows over HTTP (a bureau case to
archive, a two-hop district case, a joint case recalled and re-sent: 17 events), stops it, then
copies those streams COPIES times straight into events.db with new stream names and case
numbers. 58800 copies give about 1M events. Then: minqing rebuild --data DATA_DIR
MINQING_BIN picks the binary (default target/debug/minqing).
"""
import json, os, sqlite3, subprocess, sys, time, urllib.request, signal
data = sys.argv[1]; copies = int(sys.argv[2])
exe = os.environ.get('MINQING_BIN', 'target/debug/minqing')
os.makedirs(data, exist_ok=True)
env = dict(os.environ, MINQING_DEMO_PASSWORD='bench-12345')
p = subprocess.Popen([exe, 'serve', '--addr', '127.0.0.1:0', '--data', data], stdout=subprocess.PIPE, env=env, text=True)
base = p.stdout.readline().strip().split('on ')[1]
def call(method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header('content-type', 'application/json')
    if token: req.add_header('authorization', 'Bearer ' + token)
    with urllib.request.urlopen(req) as r: return json.loads(r.read() or b'{}')
tok = {u: call('POST', '/api/v1/auth/login', body={'username': u, 'password': 'bench-12345'})['token'] for u in ['operator', 'dispatcher', 'housing_handler', 'chengguan_dispatcher', 'chengguan_s01_handler']}
def intake(t, loc):
    return {'caller_name': '王芳', 'caller_phone': '13912345678', 'channel': 'phone', 'category': 'complaint', 'kind': 'escalated', 'urgency': 'normal', 'title': t, 'content': '小区门口夜间占道经营，噪音扰民，请相关部门处理。', 'address': '城关区酒泉路街道某小区北门', 'location_unit_id': loc}
def verb(u, i, v, b): return call('POST', f'/api/v1/cases/{i}/{v}', tok[u], b)
# a: a bureau case through to archive
i = call('POST', '/api/v1/cases', tok['operator'], intake('住建', 'd.chengguan.s01'))['id']
verb('dispatcher', i, 'transfer', {'lead_unit_id': 'city.bureau.housing'}); verb('housing_handler', i, 'receive', {})
verb('housing_handler', i, 'progress', {'note': '已约谈物业'}); verb('housing_handler', i, 'complete', {'reply': '已整改'})
verb('operator', i, 'callback', {'satisfaction': 'satisfied', 'resolved': True}); verb('operator', i, 'archive', {})
# b: two hops down a district, in handling
i = call('POST', '/api/v1/cases', tok['operator'], intake('街道', 'd.chengguan.s01.c01'))['id']
verb('dispatcher', i, 'transfer', {'lead_unit_id': 'd.chengguan'}); verb('chengguan_dispatcher', i, 'receive', {})
verb('chengguan_dispatcher', i, 'transfer', {'lead_unit_id': 'd.chengguan.s01'}); verb('chengguan_s01_handler', i, 'receive', {})
verb('chengguan_s01_handler', i, 'progress', {'note': '已到现场'})
# c: joint case recalled and re-sent
i = call('POST', '/api/v1/cases', tok['operator'], intake('联办', 'd.chengguan.s02'))['id']
verb('dispatcher', i, 'transfer', {'lead_unit_id': 'd.chengguan', 'co_unit_ids': ['city.bureau.urban']})
verb('dispatcher', i, 'recall', {'reason': '派错'}); verb('dispatcher', i, 'transfer', {'lead_unit_id': 'city.bureau.housing'})
p.send_signal(signal.SIGTERM); p.wait()
db = sqlite3.connect(os.path.join(data, 'events.db'))
db.execute("CREATE TEMP TABLE template AS SELECT * FROM events WHERE stream LIKE 'case-%' ORDER BY position")
n = db.execute('SELECT count(*) FROM template').fetchone()[0]
t = time.time()
for k in range(copies):
    db.execute("""INSERT INTO events (stream, version, event_id, event_type, schema_version, data, metadata, recorded_at)
      SELECT 'case-R' || ?1 || substr(stream, 6), version, randomblob(16), event_type, schema_version,
             replace(data, '"case_id":"' || substr(stream, 6) || '"', '"case_id":"R' || ?1 || substr(stream, 6) || '"'),
             metadata, recorded_at FROM template ORDER BY position""", (k,))
db.execute("INSERT OR REPLACE INTO streams (stream, version) SELECT stream, max(version) FROM events GROUP BY stream")
db.commit()
print('template', n, 'events; total', db.execute('SELECT count(*) FROM events').fetchone()[0], 'in', round(time.time() - t, 1), 's')
