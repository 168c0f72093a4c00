-- The catalogue, rewards and promotions every installation starts with. Fees in fen, data in MB,
-- WLAN in minutes.
INSERT INTO products (code, kind, family, name_zh, name_en, monthly_fee, voice_minutes, data_mb, sms_count, wlan_minutes, description_zh, description_en, sort_order) VALUES
('GT58',  'plan', 'gotone', '全球通 58 元套餐',  'GoTone 58',   5800,   100,   5120,  100, 0, '国内通话 100 分钟,国内流量 5GB,短信 100 条', '100 min calls, 5 GB data, 100 SMS', 10),
('GT88',  'plan', 'gotone', '全球通 88 元套餐',  'GoTone 88',   8800,   200,  10240,  200, 0, '国内通话 200 分钟,国内流量 10GB,短信 200 条', '200 min calls, 10 GB data, 200 SMS', 11),
('GT128', 'plan', 'gotone', '全球通 128 元套餐', 'GoTone 128', 12800,   500,  20480,  300, 0, '国内通话 500 分钟,国内流量 20GB,短信 300 条', '500 min calls, 20 GB data, 300 SMS', 12),
('GT188', 'plan', 'gotone', '全球通 188 元套餐', 'GoTone 188', 18800,   700,  30720,  500, 0, '国内通话 700 分钟,国内流量 30GB,短信 500 条', '700 min calls, 30 GB data, 500 SMS', 13),
('GT288', 'plan', 'gotone', '全球通 288 元套餐', 'GoTone 288', 28800,  1000,  51200,  500, 0, '国内通话 1000 分钟,国内流量 50GB,短信 500 条', '1000 min calls, 50 GB data, 500 SMS', 14),
('GT388', 'plan', 'gotone', '全球通 388 元套餐', 'GoTone 388', 38800,  2000,  81920, 1000, 0, '国内通话 2000 分钟,国内流量 80GB,短信 1000 条', '2000 min calls, 80 GB data, 1000 SMS', 15),
('GT588', 'plan', 'gotone', '全球通 588 元套餐', 'GoTone 588', 58800,  3000, 153600, 1000, 0, '国内通话 3000 分钟,国内流量 150GB,短信 1000 条', '3000 min calls, 150 GB data, 1000 SMS', 16),
('DG18',  'plan', 'mzone',  '动感地带 18 元套餐', 'M-Zone 18',  1800,    30,   3072,   50, 0, '国内通话 30 分钟,国内流量 3GB,短信 50 条', '30 min calls, 3 GB data, 50 SMS', 20),
('DG38',  'plan', 'mzone',  '动感地带 38 元套餐', 'M-Zone 38',  3800,   100,  10240,  100, 0, '国内通话 100 分钟,国内流量 10GB,短信 100 条', '100 min calls, 10 GB data, 100 SMS', 21),
('SZX8',  'plan', 'easyown','神州行 8 元套餐',    'Easyown 8',   800,     0,    100,    0, 0, '国内流量 100MB,通话按 0.19 元/分钟计费', '100 MB data; calls at ¥0.19/min', 30),
('SZX19', 'plan', 'easyown','神州行 19 元套餐',   'Easyown 19', 1900,    60,   1024,   30, 0, '国内通话 60 分钟,国内流量 1GB,短信 30 条', '60 min calls, 1 GB data, 30 SMS', 31),
('EDU10', 'addon', 'campus_wlan', '校园 WLAN 10 元包', 'Campus WLAN 10', 1000, 0, 0, 0,  2400, '校园 WLAN 40 小时;超出校内 0.02 元/分钟、校外 0.05 元/分钟,每月封顶 500 元、40GB', '40 hours campus WLAN; then ¥0.02/min on campus, ¥0.05/min off campus, capped at ¥500 and 40 GB a month', 40),
('EDU20', 'addon', 'campus_wlan', '校园 WLAN 20 元包', 'Campus WLAN 20', 2000, 0, 0, 0,  6000, '校园 WLAN 100 小时;超出校内 0.02 元/分钟、校外 0.05 元/分钟,每月封顶 500 元、40GB', '100 hours campus WLAN; then ¥0.02/min on campus, ¥0.05/min off campus, capped at ¥500 and 40 GB a month', 41),
('EDU40', 'addon', 'campus_wlan', '校园 WLAN 40 元包', 'Campus WLAN 40', 4000, 0, 0, 0, 15000, '校园 WLAN 250 小时;超出校内 0.02 元/分钟、校外 0.05 元/分钟,每月封顶 500 元、40GB', '250 hours campus WLAN; then ¥0.02/min on campus, ¥0.05/min off campus, capped at ¥500 and 40 GB a month', 42),
('LL10',  'addon', 'data', '10 元 1GB 流量包', 'Data pack 1 GB', 1000, 0, 1024, 0, 0, '每月国内流量 1GB', '1 GB domestic data a month', 50),
('LL20',  'addon', 'data', '20 元 3GB 流量包', 'Data pack 3 GB', 2000, 0, 3072, 0, 0, '每月国内流量 3GB', '3 GB domestic data a month', 51),
('LL30',  'addon', 'data', '30 元 6GB 流量包', 'Data pack 6 GB', 3000, 0, 6144, 0, 0, '每月国内流量 6GB', '6 GB domestic data a month', 52),
('DX5',   'addon', 'sms',  '5 元短信包',       'SMS pack',        500, 0,    0, 200, 0, '每月国内短信 200 条', '200 domestic SMS a month', 60),
('JTCL',  'addon', 'ringback', '集团彩铃',     'Group ring-back tone', 500, 0, 0, 0, 0, '主叫听到企业定制的彩铃', 'Callers hear your company''s ring-back tone', 70);

INSERT INTO rewards (code, name_zh, name_en, cost, kind, credit_fen, data_mb, sort_order) VALUES
('HF5',   '5 元话费',        '¥5 bill credit',      400,  'bill_credit',  500,    0, 1),
('HF10',  '10 元话费',       '¥10 bill credit',     700,  'bill_credit', 1000,    0, 2),
('HF27',  '27 元话费',       '¥27 bill credit',     1800, 'bill_credit', 2700,    0, 3),
('LL1G',  '1GB 当月流量',     '1 GB data this month', 1000, 'data_pack',     0, 1024, 4),
('BWB',   '定制保温杯(邮寄)', 'Thermos cup (posted)', 3000, 'gift',          0,    0, 5);

-- 2026-01-01 to 2028-01-01 Shanghai time.
INSERT INTO promotions (code, name_zh, name_en, min_amount, gift, starts_at, ends_at) VALUES
('YC600', '预存 600 得 900', 'Prepay ¥600, get ¥900', 60000, 30000, 1767196800000, 1830268800000),
('YC100', '充 100 送 10',    'Top up ¥100, get ¥10 more', 10000, 1000, 1767196800000, 1830268800000);
