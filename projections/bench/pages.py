"""Server time of every workbench page, and the bytes of a first visit, on a data directory.

Usage: python3 projections/bench/pages.py DATA_DIR [N]   (N requests per page, default 100)

DATA_DIR is typically a generated year (`minqing generate --data DATA_DIR --cases 1000000`,
then `minqing rebuild --data DATA_DIR`). MINQING_BIN names the binary (default
target/release/minqing); MINQING_DEMO_PASSWORD the password the directory was seeded with
(default demo-12345). Each user signs in through the sign-in form, as a browser does (its
token and cookie first), then every page is requested N times over one keep-alive connection;
the time is from sending the request to the last byte of the answer, on loopback, so it is the
server's time plus a few tens of microseconds. Pages that are htmx fragments are requested with
`HX-Request: true`, as the page itself asks for them.

The first visit: the sign-in page, then 我的待办, then every asset those pages reference, each
fetched once, as a browser with an empty cache would; fonts are the system's.
"""
import http.client, os, re, signal, sqlite3, subprocess, sys, time, urllib.parse

data = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
exe = os.environ.get('MINQING_BIN', 'target/release/minqing')
password = os.environ.get('MINQING_DEMO_PASSWORD', 'demo-12345')

read_db = sqlite3.connect(os.path.join(data, 'read.db'))
# The case page: a case with a long history (the most events), and the newest case.
long_case = read_db.execute('SELECT case_id FROM case_list ORDER BY version DESC LIMIT 1').fetchone()[0]
newest_case = read_db.execute('SELECT case_id FROM case_list ORDER BY case_id DESC LIMIT 1').fetchone()[0]
phone = read_db.execute(
    'SELECT caller_phone FROM case_list GROUP BY caller_phone ORDER BY count(*) DESC LIMIT 1').fetchone()[0]
read_db.close()

env = dict(os.environ, MINQING_DEMO_PASSWORD=password, RUST_LOG='warn')
proc = subprocess.Popen([exe, 'serve', '--addr', '127.0.0.1:0', '--data', data],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
host, port = proc.stdout.readline().strip().split('on ')[1].replace('http://', '').split(':')
port = int(port)


def stop():
    proc.send_signal(signal.SIGTERM)
    proc.wait()


import atexit
atexit.register(stop)


class Browser:
    """One keep-alive connection with a cookie jar of name=value pairs."""

    def __init__(self):
        self.conn = http.client.HTTPConnection(host, port)
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h['Cookie'] = '; '.join(f'{k}={v}' for k, v in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            h['Content-Type'] = 'application/x-www-form-urlencoded'
        self.conn.request(method, path, body=body, headers=h)
        res = self.conn.getresponse()
        payload = res.read()
        for value in res.headers.get_all('Set-Cookie') or []:
            name, _, rest = value.partition('=')
            val = rest.split(';', 1)[0]
            if 'Max-Age=0' in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = val
        return res.status, res.headers, payload

    def sign_in(self, username):
        status, _, html = self.request('GET', '/login')
        token = re.search(rb'name="login_token" value="([0-9a-f]+)"', html).group(1).decode()
        status, headers, _ = self.request('POST', '/login', {
            'username': username, 'password': password, 'login_token': token})
        assert status == 303 and headers['Location'] == '/', (username, status, headers['Location'])


def first_visit():
    b = Browser()
    total = 0
    seen = set()
    parts = []

    def fetch(path):
        nonlocal total
        status, _, body = b.request('GET', path)
        assert status in (200, 303), (path, status)
        total += len(body)
        parts.append((path, len(body)))
        for asset in re.findall(rb'"(/assets/[^"]+)"', body):
            asset = asset.decode()
            if asset not in seen:
                seen.add(asset)
                fetch(asset)

    fetch('/login')
    b.sign_in('operator')
    fetch('/')
    print(f'first visit (sign-in page, 我的待办, their assets): {total / 1024:.1f} KB in {len(parts)} requests')
    for path, size in parts:
        print(f'    {path:50} {size / 1024:7.1f} KB')


q = urllib.parse.quote
# (user, path, is_htmx_fragment). Pages a user may not open are not listed for that user.
only = os.environ.get('ONLY')  # a substring: time only the pages whose path holds it
pages = [
    (None, '/login', False),
    ('operator', '/', False),
    ('chengguan_dispatcher', '/?list=to_receive', False),
    ('chengguan_dispatcher', '/?list=in_progress', False),
    ('chengguan_dispatcher', '/?list=overdue', False),
    ('chengguan_s01_handler', '/?list=in_progress', False),
    ('supervisor', '/?list=overdue', False),
    ('chengguan_dispatcher', '/?list=in_progress', True),
    ('operator', '/account', False),
]
pages.append(('city_leader', f'/cases/{long_case}', False))
pages.append(('city_leader', f'/cases/{newest_case}', False))
# Pages added by the workbench's other parts: listed when the service serves them.
optional = [
    ('operator', '/intake', False),
    ('operator', f'/intake?phone={q(phone)}', False),
    ('city_leader', '/query', False),
    ('city_leader', '/query?q=' + q('停水'), False),
    ('chengguan_dispatcher', '/query?category=complaint&overdue=true', False),
    ('operator', '/kb', False),
    ('operator', '/kb?q=' + q('医保'), False),
    ('supervisor', '/oversight', False),
    ('city_leader', '/oversight/leader', False),
    ('supervisor', '/reports/kpi', False),
    ('supervisor', '/reports/kpi?period=month&date=2025-06-15', False),
    ('supervisor', '/reports/kpi?period=week&date=2025-06-16', False),
    ('supervisor', '/reports/kpi?period=day&date=2025-06-16', False),
    ('chengguan_dispatcher', '/reports/kpi?period=month&date=2025-06-15', False),
    ('supervisor', '/reports/daily', False),
    ('supervisor', '/reports/daily?date=2025-06-16', False),
    ('supervisor', '/reports/daily?date=2025-12-31', False),
    ('chengguan_leader', '/reports/daily?date=2025-06-16', False),
    ('city_leader_housing', '/reports/daily?date=2025-06-16', False),
]

first_visit()
browsers = {}
print(f'{"user":24} {"page":62} status   p50 ms   p99 ms   bytes')
for user, path, fragment in pages + optional:
    if only and only not in path:
        continue
    if user not in browsers:
        browsers[user] = Browser()
        if user:
            browsers[user].sign_in(user)
    b = browsers[user]
    headers = {'HX-Request': 'true'} if fragment else {}
    lat = []
    status, size = None, 0
    for _ in range(n):
        t = time.perf_counter()
        status, _, body = b.request('GET', path, headers=headers)
        lat.append((time.perf_counter() - t) * 1000)
        size = len(body)
    if status == 404 and (user, path, fragment) in optional:
        continue
    lat.sort()
    label = path + (' (htmx)' if fragment else '')
    print(f'{user or "(not signed in)":24} {label:62} {status:>6} {lat[len(lat) // 2]:8.1f} {lat[max(0, int(len(lat) * 0.99) - 1)]:8.1f} {size:7}')
