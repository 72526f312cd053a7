"""Fuzzy case search p50/p99 over HTTP on a synthetic store of many cases with varied texts.

Usage (from the repository root):
  MINQING_BIN=target/release/minqing python3 projections/bench/casesearch.py DATA_DIR COPIES [N]
Builds DATA_DIR from three real case flows over HTTP (17 events), then COPIES copies of their
streams straight into events.db, giving every copied case its own title, content,
address and reply from a list of topics and communities, so the text index is not one
repeated document. Then runs `minqing rebuild` (read models, KB index, case index; timed),
starts `minqing serve` and measures N requests (default 200) per query. 33400 copies give
100,200 cases. (`minqing generate` makes realistic stores; this script keeps its own so its
numbers stay comparable with the earlier ones in docs/benchmarks.md.)

With REUSE=1 and an existing DATA_DIR/events.db (COPIES is then ignored), nothing is
generated: the same store is rebuilt by the binary given and measured, so two builds can be
compared on one data set (copy the directory first; rebuild rewrites the read database and
the indexes in it).
"""
import json, os, random, sqlite3, subprocess, sys, time, urllib.request, urllib.parse, signal

data = sys.argv[1]; copies = int(sys.argv[2]); n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
exe = os.environ.get('MINQING_BIN', 'target/release/minqing')
env = dict(os.environ, MINQING_DEMO_PASSWORD='bench-12345', RUST_LOG='warn')
random.seed(12345)

def serve():
    p = subprocess.Popen([exe, 'serve', '--addr', '127.0.0.1:0', '--data', data],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    return p, p.stdout.readline().strip().split('on ')[1]

def caller(base):
    def call(method, path, token=None, body=None):
        req = urllib.request.Request(base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header('content-type', 'application/json')
        if token: req.add_header('authorization', 'Bearer ' + token)
        with urllib.request.urlopen(req) as r: return json.loads(r.read() or b'{}')
    return call

TOPICS = [
    ('门口占道经营', '{c}门口每天晚上都有商贩占道经营，堵塞通行，请城管处理。', '已通知城管执法中队清理占道经营。'),
    ('楼上装修噪音', '{c}楼上装修每天早上七点就开始，噪音很大，影响休息。', '已联系物业督促装修户按规定时间施工。'),
    ('小区停水', '{c}从昨天开始停水，没有任何通知。', '供水公司已抢修管道，恢复供水。'),
    ('供暖温度不达标', '{c}家中暖气不热，室温只有十四度。', '热力公司已上门排查，更换阀门。'),
    ('路灯不亮', '{c}附近路灯坏了一个多月，晚上很黑。', '路灯所已维修。'),
    ('垃圾清运不及时', '{c}垃圾桶满了好几天没人清运，气味很大。', '环卫所已安排清运。'),
    ('物业服务差', '{c}物业不作为，电梯经常坏。', '住建局已约谈物业公司。'),
    ('拖欠工资', '在{c}附近工地打工，老板拖欠工资三个月。', '人社局劳动监察已立案。'),
    ('宠物扰民', '{c}有人遛狗不牵绳，狗叫扰民。', '已联系社区进行文明养犬宣传。'),
    ('违章停车', '{c}门口经常有车辆违章停车堵住消防通道。', '交警已劝离违停车辆。'),
    ('餐饮油烟', '{c}楼下饭店油烟直排，家里窗户都不能开。', '生态环境局已责令安装油烟净化设施。'),
    ('公交站牌损坏', '{c}附近公交站牌被撞坏。', '公交公司已修复站牌。'),
]
COMMUNITIES = ['阳光花园', '幸福里', '锦绣家园', '金城小区', '东岗新村', '黄河家园', '安宁庭院',
               '西湖小区', '翠华苑', '雁滩花园', '兰园小区', '滨河苑', '春晓花园', '明珠小区']
STREETS = ['酒泉路街道', '张掖路街道', '雁南街道', '西湖街道', '敦煌路街道']

reuse = os.environ.get('REUSE') == '1' and os.path.exists(os.path.join(data, 'events.db'))
os.makedirs(data, exist_ok=True)
if reuse:
    print('reusing', data)
else:
  p, base = serve(); call = caller(base)
  tok = {u: call('POST', '/api/v1/auth/login', body={'username': u, 'password': 'bench-12345'})['token']
         for u in ['operator', 'dispatcher', 'housing_handler', 'chengguan_dispatcher', 'chengguan_s01_handler']}
  def intake(t, loc):
      return {'caller_name': '王芳', 'caller_phone': '13912345678', 'channel': 'phone', 'category': 'complaint',
              'kind': 'escalated', 'urgency': 'normal', 'title': t, 'content': '模板', 'address': '模板',
              'location_unit_id': loc}
  def verb(u, i, v, b): return call('POST', f'/api/v1/cases/{i}/{v}', tok[u], b)
  i = call('POST', '/api/v1/cases', tok['operator'], intake('住建', 'd.chengguan.s01'))['id']
  verb('dispatcher', i, 'transfer', {'lead_unit_id': 'city.bureau.housing'}); verb('housing_handler', i, 'receive', {})
  verb('housing_handler', i, 'progress', {'note': '已约谈物业'}); verb('housing_handler', i, 'complete', {'reply': '已整改'})
  verb('operator', i, 'callback', {'satisfaction': 'satisfied', 'resolved': True}); verb('operator', i, 'archive', {})
  i = call('POST', '/api/v1/cases', tok['operator'], intake('街道', 'd.chengguan.s01.c01'))['id']
  verb('dispatcher', i, 'transfer', {'lead_unit_id': 'd.chengguan'}); verb('chengguan_dispatcher', i, 'receive', {})
  verb('chengguan_dispatcher', i, 'transfer', {'lead_unit_id': 'd.chengguan.s01'}); verb('chengguan_s01_handler', i, 'receive', {})
  verb('chengguan_s01_handler', i, 'progress', {'note': '已到现场'})
  i = call('POST', '/api/v1/cases', tok['operator'], intake('联办', 'd.chengguan.s02'))['id']
  verb('dispatcher', i, 'transfer', {'lead_unit_id': 'd.chengguan', 'co_unit_ids': ['city.bureau.urban']})
  verb('dispatcher', i, 'recall', {'reason': '派错'}); verb('dispatcher', i, 'transfer', {'lead_unit_id': 'city.bureau.housing'})
  p.send_signal(signal.SIGTERM); p.wait()

  db = sqlite3.connect(os.path.join(data, 'events.db'))
  template = db.execute("SELECT stream, version, event_type, schema_version, data, metadata, recorded_at "
                        "FROM events WHERE stream LIKE 'case-%' ORDER BY position").fetchall()
  t = time.time()
  rows = []
  for k in range(copies):
      texts = {}
      for stream, version, event_type, schema_version, data_json, metadata, recorded_at in template:
          old_id = stream[5:]; new_id = f'R{k}{old_id}'
          if stream not in texts:
              title, content, reply = random.choice(TOPICS)
              community = random.choice(COMMUNITIES) + '小区'
              texts[stream] = (community + title, content.format(c=community),
                               f'城关区{random.choice(STREETS)}{community}{random.randint(1, 30)}号楼', reply)
          title, content, address, reply = texts[stream]
          body = json.loads(data_json)
          inner = next(iter(body.values()))
          if isinstance(inner, dict):
              if 'case_id' in inner: inner['case_id'] = new_id
              if 'intake' in inner:
                  inner['intake'].update(title=title, content=content, address=address)
              if event_type == 'completed': inner['reply'] = reply
          rows.append(('case-' + new_id, version, os.urandom(16), event_type, schema_version,
                       json.dumps(body, ensure_ascii=False, separators=(',', ':')), metadata, recorded_at))
      if len(rows) > 100_000:
          db.executemany("INSERT INTO events (stream, version, event_id, event_type, schema_version, data, metadata, recorded_at) VALUES (?,?,?,?,?,?,?,?)", rows)
          rows = []
  db.executemany("INSERT INTO events (stream, version, event_id, event_type, schema_version, data, metadata, recorded_at) VALUES (?,?,?,?,?,?,?,?)", rows)
  db.execute("INSERT OR REPLACE INTO streams (stream, version) SELECT stream, max(version) FROM events GROUP BY stream")
  db.commit()
  n_cases = db.execute("SELECT count(*) FROM streams WHERE stream LIKE 'case-%'").fetchone()[0]
  print('cases', n_cases, 'events', db.execute('SELECT count(*) FROM events').fetchone()[0],
        'written in', round(time.time() - t, 1), 's')
  db.close()

t = time.time()
out = subprocess.run([exe, 'rebuild', '--data', data], env=env, capture_output=True, text=True, check=True)
print(out.stdout.strip()); print('rebuild (read models + KB index + case index):', round(time.time() - t, 1), 's')

p, base = serve(); call = caller(base)
tok = {u: call('POST', '/api/v1/auth/login', body={'username': u, 'password': 'bench-12345'})['token']
       for u in ['city_leader', 'chengguan_dispatcher', 'dispatcher', 'chengguan_s01_handler']}
queries = [
    ('city_leader', '小区门口有人摆摊', ''),
    ('chengguan_dispatcher', '小区门口有人摆摊', ''),
    ('dispatcher', '阳光花园楼上装修太吵了', ''),
    ('city_leader', '暖气不热', '&status=transferred'),
    ('chengguan_dispatcher', '拖欠工资', '&sort=-created_at'),
    ('city_leader', '停水', '&district=d.chengguan&per_page=50'),
    ('chengguan_s01_handler', '小区门口有人摆摊', ''),
    ('dispatcher', '垃圾清运', '&page=100'),
]
for user, q, extra in queries:
    path = '/api/v1/cases?q=' + urllib.parse.quote(q) + extra
    lat = []; total = None
    for _ in range(n):
        t = time.perf_counter(); r = call('GET', path, tok[user]); lat.append((time.perf_counter() - t) * 1000)
        total = r.get('total')
    lat.sort()
    print(f"{user:22} q={q:16} {extra:28} total={total:>6} p50={lat[len(lat)//2]:7.1f} ms p99={lat[int(len(lat)*0.99)-1]:7.1f} ms")
p.send_signal(signal.SIGTERM); p.wait()
