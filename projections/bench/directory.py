"""Server time of the directory's and the rules' changes on a data directory, and of closing a
unit that holds many open cases (each handed over to its successor).

Usage: python3 projections/bench/directory.py DATA_DIR [N]   (N changes of each kind, default 50)

DATA_DIR is typically a generated year (`minqing generate --data DATA_DIR --cases 200000`, then
`minqing rebuild --data DATA_DIR`); it is changed (a unit renamed N times, N users created,
one street closed): run it on a copy. MINQING_BIN names the binary (default
target/release/minqing); MINQING_DEMO_PASSWORD the demo password (default demo-12345). Times
are from sending the request to the last byte of the answer over one keep-alive connection on
loopback.
"""
import http.client, json, os, signal, sqlite3, statistics, subprocess, sys, time

data = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
exe = os.environ.get('MINQING_BIN', 'target/release/minqing')
password = os.environ.get('MINQING_DEMO_PASSWORD', 'demo-12345')

read_db = sqlite3.connect(os.path.join(data, 'read.db'))
# The street with the most open cases (held there or transferred on from there), and a sibling
# to take them over.
street, held = read_db.execute(
    "SELECT unit_id, count(DISTINCT case_id) FROM ("
    "  SELECT unit_id, case_id FROM case_holder UNION"
    "  SELECT from_unit_id, case_id FROM case_transfer)"
    " WHERE unit_id LIKE 'd.%.s__' GROUP BY unit_id ORDER BY 2 DESC LIMIT 1").fetchone()
read_db.close()
district = street.rsplit('.', 1)[0]
successor = next(
    s for s in (f'{district}.s{i:02d}' for i in range(1, 40)) if s != street)

env = dict(os.environ, MINQING_DEMO_PASSWORD=password, RUST_LOG='warn')
started = time.perf_counter()
proc = subprocess.Popen([exe, 'serve', '--addr', '127.0.0.1:0', '--data', data],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
host, port = proc.stdout.readline().strip().split('on ')[1].replace('http://', '').split(':')
print(f'start: {time.perf_counter() - started:.2f} s until listening')
conn = http.client.HTTPConnection(host, int(port))


def call(method, path, body=None, token=None):
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = f'Bearer {token}'
    t = time.perf_counter()
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    res = conn.getresponse()
    payload = res.read()
    return res.status, payload, (time.perf_counter() - t) * 1000


def report(name, times):
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f'{name:<32} n={len(times):<4} p50 {p(0.5):7.1f} ms  p99 {p(0.99):7.1f} ms  max {times[-1]:7.1f} ms')


try:
    status, body, _ = call('POST', '/api/v1/auth/login', {'username': 'admin', 'password': password})
    assert status == 200, body
    admin = json.loads(body)['token']
    times = []
    for i in range(n):
        status, body, ms = call('POST', '/api/v1/units/city.bureau.housing/rename',
                                {'name': f'兰州市住房和城乡建设局（{i}）'}, admin)
        assert status == 200, body
        times.append(ms)
    report('rename a unit', times)
    times = []
    for i in range(n):
        status, body, ms = call('POST', '/api/v1/users', {
            'username': f'bench_user_{i}_{os.getpid()}', 'display_name': '测试用户',
            'unit_id': 'city.bureau.housing', 'roles': ['handler']}, admin)
        assert status == 201, body
        times.append(ms)
    report('create a user (argon2 hash)', times)
    times = []
    for _ in range(n):
        status, body, ms = call('GET', '/api/v1/rules', token=admin)
        assert status == 200, body
        times.append(ms)
    report('GET /api/v1/rules', times)
    # Close the street: first its staff and the leaders overseeing it go elsewhere.
    status, body, _ = call('GET', '/api/v1/users', token=admin)
    for user in json.loads(body):
        if user['unit_id'] == street or street in user['oversees']:
            if user['unit_id'] == street:
                call('POST', f"/api/v1/users/{user['username']}/disable", {}, admin)
            else:
                call('POST', f"/api/v1/users/{user['username']}/change", {
                    'unit_id': user['unit_id'], 'roles': user['roles'],
                    'oversees': [o for o in user['oversees'] if o != street]}, admin)
    status, body, _ = call('GET', f'/api/v1/units?parent_id={street}&limit=200', token=admin)
    for child in json.loads(body):
        # Its communities move to the successor with everything below them.
        status, moved, _ = call('POST', f"/api/v1/units/{child['id']}/move", {'parent_id': successor}, admin)
        assert status == 200, moved
    status, body, ms = call('POST', f'/api/v1/units/{street}/close', {'successor': successor}, admin)
    assert status == 200, body
    print(f'close {street} holding {held} open cases, handed to {successor}: {ms / 1000:.2f} s '
          f'({held / (ms / 1000):.0f} cases/s)')
finally:
    proc.send_signal(signal.SIGTERM)
    proc.wait()
