// UI text in Chinese first, English on request; the choice is kept in localStorage. Map labels follow it.
const TEXT = {
  zh: {
    title: '全域治理一张图', layers: '图层', basemaps: '底图', filters: '筛选', events: '事件', alarms: '告警',
    search: '搜索乡镇、村、网格、建筑、寺院、站点、事件编号、人员…', login: '登录', logout: '退出',
    username: '用户名', password: '密码', anonymous: '未登录 · 仅公开图层', loginFailed: '登录失败',
    identify: '要素详情', close: '关闭', timeline: '时间线', replay: '轨迹回放', readings: '监测数据',
    window: '时间范围', lastDays: '最近天数', openToo: '含全部未办结', status: '状态', type: '类型', source: '来源',
    townships: '乡镇', all: '全部', apply: '应用', reset: '重置', queueNew: '新上报', queueOverdue: '已超期',
    queueMine: '我的', queueOpen: '办理中', noResults: '无结果', note: '备注', assignee: '处置人',
    coords: '经纬度', zoom: '级别', loading: '加载中…', more: '放大查看', actionsDone: '已执行', lang: 'EN',
    imagery: '影像', hillshade: '地形晕渲', dem: '高程', none: '无底图', view3d: '三维', view2d: '二维',
    off: '关闭', heatmap: '热力图', whiteModel: '白模', view2dBack: '二维', stops: '处停留', alarm_ack: '确认', 'alarm_to-event': '转事件', alarm_resolve: '解除',
    reportedAt: '上报时间', replayTab: '回放', day: '日期', worker: '人员', replayDay: '回放全天', speedKmh: '速度 km/h', noFixes: '无轨迹点', play: '播放', pause: '暂停', speed: '倍速', team: '网格队伍', yes: '是', no: '否', chooseAssignee: '请选择处置人', otherAssignee: '其他（填写账号）', noTeam: '该网格未配置队伍', role_leader: '网格长', role_full_time: '专职网格员', role_part_time: '兼职网格员', role_instructor: '网格指导员', role_department: '部门', deadline: '期限', cluster: '聚合', points: '个要素', openCount: '未办结', overdue: '超期',
  },
  en: {
    title: 'onemap · county command screen', layers: 'Layers', basemaps: 'Base map', filters: 'Filters',
    events: 'Events', alarms: 'Alarms',
    search: 'Search townships, villages, grids, buildings, temples, sites, event codes, people…', login: 'Log in',
    logout: 'Log out', username: 'Username', password: 'Password', anonymous: 'Not logged in · public layers only',
    loginFailed: 'Login failed', identify: 'Feature', close: 'Close', timeline: 'Timeline', replay: 'Replay track',
    readings: 'Readings', window: 'Time window', lastDays: 'Last days', openToo: 'plus everything open',
    status: 'Status', type: 'Type', source: 'Source', townships: 'Townships', all: 'All', apply: 'Apply',
    reset: 'Reset', queueNew: 'New', queueOverdue: 'Overdue', queueMine: 'Mine', queueOpen: 'Open',
    noResults: 'Nothing found', note: 'Note', assignee: 'Assignee', coords: 'Lon/lat', zoom: 'Zoom',
    loading: 'Loading…', more: 'Zoom in', actionsDone: 'Done', lang: '中文', imagery: 'Imagery',
    hillshade: 'Hillshade', dem: 'Elevation', none: 'No base map', view3d: '3D', view2d: '2D',
    off: 'Off', heatmap: 'Heat map', whiteModel: '3D model', view2dBack: '2D', stops: 'stops', alarm_ack: 'Acknowledge', 'alarm_to-event': 'To event',
    alarm_resolve: 'Resolve', reportedAt: 'Reported', replayTab: 'Replay', day: 'Day', worker: 'Worker', replayDay: 'Replay the whole day', speedKmh: 'speed km/h', noFixes: 'No fixes', play: 'Play', pause: 'Pause', speed: 'Speed', team: 'Grid team', yes: 'yes', no: 'no', chooseAssignee: 'Choose whom to dispatch to', otherAssignee: 'Someone else (username)', noTeam: 'No team bound to this grid', role_leader: 'grid leader', role_full_time: 'full-time', role_part_time: 'part-time', role_instructor: 'instructor', role_department: 'department', deadline: 'Deadline', cluster: 'Cluster', points: 'features', openCount: 'open',
    overdue: 'overdue',
  },
};
const LAYERS = {
  zh: { townships: '乡镇', villages: '村/社区', grids: '网格', buildings: '建筑白模', temples: '寺院',
    monitoring_sites: '监测站点', pois: '专题点', events: '事件', patrols: '巡查轨迹', track_points: '轨迹点',
    readings: '监测读数', alarms: '告警', heatmap: '热力图', positions: '实时位置' },
  en: { heatmap: 'Heat map (H3)' },
};
const VALUES = {
  zh: {
    reported: '新上报', accepted: '已受理', dispatched: '已派遣', in_progress: '处置中', handled: '已处置',
    verified: '已核查', closed: '已结案', rejected: '不予受理', merged: '已合并', overdue: '超期', soon_due: '临期',
    accept: '受理', reject: '不予受理', merge: '合并', dispatch: '派遣', start: '开始处置', handle: '处置完成',
    verify: '核查', rework: '返工', relocate: '更正位置', close: '结案', escalate: '越级上报', supervise: '督办',
    grid_worker: '网格员', citizen: '群众', sensor: '传感器', hotline: '热线', inspection: '巡查',
    low: '低', normal: '一般', high: '高', urgent: '紧急',
    raised: '新告警', acknowledged: '已确认', resolved: '已解除', info: '提示', warning: '警告', critical: '严重',
    smoke: '烟感', temperature: '温度', electric_fire: '电气火灾', water_quality: '水质', air: '空气', waste_bin: '垃圾桶',
    religious: '宗教', public: '公共', residential: '住宅', offline: '离线', fault: '故障', online: '在线',
    party_org: '党组织', scenic_spot: '景区', service_hall: '便民服务', enterprise: '企业', overdue_event: '事件超期', worker_silent: '人员失联', threshold: '超阈值', no_data: '无数据',
  },
};

// Property names in the identify panel (the collections' own names in English).
const PROPS = {
  zh: { name: '名称', name_zh: '中文名', title: '标题', description: '描述', status: '状态', type: '类型', source: '来源',
    priority: '优先级', reported_at: '上报时间', reporter: '上报人', assignee: '处置人', department: '部门',
    deadline: '期限', due_state: '时限状态', event_code: '事件编号', height: '高度(米)', floors: '层数', use: '用途',
    year_built: '建成年份', is_key: '重点建筑', sect: '教派', monks: '僧侣人数', kind: '类别', site_code: '站点编号',
    township_code: '乡镇代码', grid_code: '网格代码', village_code: '村代码', leader: '负责人', phone: '电话',
    worker: '人员', started_at: '开始时间', ended_at: '结束时间', distance_m: '里程(米)', duration_s: '时长(秒)',
    point_count: '轨迹点数', mode: '方式', level: '级别', metric: '指标', value: '数值', unit: '单位',
    threshold: '阈值', message: '说明', raised_at: '告警时间', site_id: '站点', population: '人口', area_km2: '面积(km²)' },
};

let lang = localStorage.getItem('onemap.lang') || 'zh';

export const currentLang = () => lang;
export const t = (key) => (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;
export const layerName = (id, title) => (LAYERS[lang] && LAYERS[lang][id]) || title || id;
export const propName = (k) => (PROPS[lang] && PROPS[lang][k]) || k;
export const valueName = (v) => (v != null && VALUES[lang] && VALUES[lang][v]) || (v == null ? '' : String(v));

export function applyText(root = document) {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.title = t('title');
}

export function toggleLang() {
  lang = lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('onemap.lang', lang);
  applyText();
  for (const fn of listeners) fn(lang);
}
const listeners = [];
export const onLang = (fn) => listeners.push(fn);
