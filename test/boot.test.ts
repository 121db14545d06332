// boot/: shell-style KEY=value files (checked against bash itself), openib.conf, ifcfg-ib<n> in both
// layouts, the bring-up plan's rules from OFED 1.2's IPoIB release notes (shared/seed), and
// `ipoib-boot --dry-run [--json]`. Fixtures: test/fixtures/boot (the seed's examples are byte copies
// of the seed's lines, see seed/README; the rest written by hand).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../bin/ipoib-boot.js';
import { formatDiagnostic, type Diagnostic } from '../boot/diagnostic.js';
import { parseIfcfg, type IfcfgLayout } from '../boot/ifcfg.js';
import { loadBootPlan, scanIfcfgDir } from '../boot/load.js';
import { parseOpenibConf } from '../boot/openib-conf.js';
import { buildPlan, type BootPlan, type PlanInterface } from '../boot/plan.js';
import { parseShellVars } from '../boot/shell-vars.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIX = join(root, 'test/fixtures/boot');
// The seed lives in the checkout's sibling folder shared/ (CI lays a copy there too).
const SEED = join(root, '..', 'shared', 'seed', 'ofed-1.2-ipoib-release-notes.txt');
const tmp = mkdtempSync(join(tmpdir(), 'boot-test-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const RH_DIR = '/etc/sysconfig/network-scripts';
const SUSE_DIR = '/etc/sysconfig/network';

function planOf(conf: string, files: Record<string, string> = {}, opts: { layout?: IfcfgLayout; ports?: string[] } = {}): BootPlan {
  const layout = opts.layout ?? 'redhat';
  const dir = layout === 'redhat' ? RH_DIR : SUSE_DIR;
  const ifcfgs = Object.entries(files).map(([name, text]) => parseIfcfg(text, `${dir}/ifcfg-${name}`, layout));
  return buildPlan({ conf: parseOpenibConf(conf, '/etc/infiniband/openib.conf'), ifcfgs, ifcfgDir: dir, ports: opts.ports ?? null });
}
const iface = (p: BootPlan, name: string): PlanInterface => {
  const i = p.interfaces.find((x) => x.name === name);
  if (i === undefined) throw new Error(`no ${name} in plan: ${p.interfaces.map((x) => x.name).join(',')}`);
  return i;
};
const codes = (ds: readonly Diagnostic[]): string[] => ds.map((d) => d.code);
const find = (ds: readonly Diagnostic[], code: string): Diagnostic | undefined => ds.find((d) => d.code === code);
const noProblems = (ds: readonly Diagnostic[]): string[] => ds.filter((d) => d.severity !== 'info').map(formatDiagnostic);

// ---------------------------------------------------------------------------------------------
t.test('shell-vars: values agree with bash sourcing the same file', async (t) => {
  const text = [
    '# comment line',
    '',
    'PLAIN=yes',
    "SINGLE='a \"b\" $PLAIN \\n # not a comment'",
    'DOUBLE="x $PLAIN ${PLAIN}y \\$PLAIN \\" \\\\ \\n # kept"',
    'TRAIL=value   # trailing comment',
    'HASH=a#b',
    'export EXPORTED=1',
    'export   LATE',
    'LATE=2',
    'A=1 B=$A C="${A}${B}"',
    'DEF=${UNSET_ONE:-fallback} DEF2=${A:-no}',
    'ESC=a\\ b\\#c',
    'MULTI="line1',
    'line2"',
    'CONT=abc\\',
    'def',
    'EMPTY=',
    'EMPTYQ=""',
    'SEMI=1; SEMI2=2',
    "MIXED='single'\"double\"bare",
    '   INDENTED=yes\t# a tab, then a comment',
  ].join('\n') + '\n';
  const file = join(tmp, 'vars.sh');
  writeFileSync(file, text);
  const keys = ['PLAIN', 'SINGLE', 'DOUBLE', 'TRAIL', 'HASH', 'EXPORTED', 'LATE', 'A', 'B', 'C', 'DEF', 'DEF2', 'ESC',
    'MULTI', 'CONT', 'EMPTY', 'EMPTYQ', 'SEMI', 'SEMI2', 'MIXED', 'INDENTED'];
  const script = `. "${file}"; ${keys.map((k) => `printf '%s\\0' "$${k}"`).join('; ')}`;
  const bash = spawnSync('/bin/bash', ['--noprofile', '--norc', '-c', script], { encoding: 'utf8', env: {}, timeout: 10_000 });
  t.equal(bash.status, 0, 'bash sources it');
  const expected = bash.stdout.split('\0').slice(0, keys.length);
  const sv = parseShellVars(text, file);
  t.same(keys.map((k) => sv.vars.get(k)?.value), expected, 'every value equals what bash sees');
  t.same(noProblems(sv.diagnostics), [], 'nothing to report in plain shell');
  t.equal(sv.vars.get('EXPORTED')?.exported, true);
  t.equal(sv.vars.get('LATE')?.exported, false, 'export before assignment marks nothing yet');
  t.equal(sv.vars.get('MULTI')?.line, 14, 'a multi-line value keeps the line it starts on');
  t.equal(sv.vars.get('CONT')?.line, 16);
  t.equal(sv.vars.get('INDENTED')?.line, 22, 'line numbers count every line');
  t.equal(sv.vars.get('SEMI2')?.line, 20);
});

t.test('shell-vars: what a shell would do that we do not is reported with file:line', async (t) => {
  const sv = parseShellVars([
    'NODE_DESC=$(hostname -s)',
    'OLD=`uname -r`',
    'N=$((1+2))',
    'ARG=$1',
    'U=$NOPE',
    'KEY = value',
    'A=b c',
    'if [ -f /x ]; then',
    'fi',
    'P=a|b',
    'OK=1',
  ].join('\n'), 'f.conf');
  const at = (line: number) => sv.diagnostics.filter((d) => d.line === line);
  t.equal(sv.vars.get('NODE_DESC')?.value, '$(hostname -s)', 'command substitution kept literally');
  t.match(at(1)[0], { severity: 'warning', code: 'not-expanded', file: 'f.conf', key: 'NODE_DESC', message: /command substitution \$\(hostname -s\)/ });
  t.equal(sv.vars.get('OLD')?.value, '`uname -r`');
  t.match(at(2)[0], { code: 'not-expanded', key: 'OLD' });
  t.match(at(3)[0], { code: 'not-expanded', message: /arithmetic/ });
  t.match(at(4)[0], { code: 'not-expanded', message: /special parameter \$1/ });
  t.equal(sv.vars.get('U')?.value, '', 'an unset variable expands to nothing, as in a shell');
  t.match(at(5)[0], { severity: 'warning', code: 'unset-variable', key: 'NOPE' });
  t.notOk(sv.vars.has('KEY'));
  t.match(at(6)[0], { code: 'not-an-assignment', key: 'KEY', message: /no spaces around '='/ });
  t.notOk(sv.vars.has('A'), "A=b c sets A only for the command 'c'");
  t.match(at(7)[0], { code: 'not-an-assignment', message: /runs 'c' with A set only for that command/ });
  t.match(at(8)[0], { code: 'not-an-assignment' });
  t.notOk(sv.vars.has('P'));
  t.match(at(10)[0], { code: 'not-an-assignment', message: /operator '\|'/ });
  t.equal(sv.vars.get('OK')?.value, '1', 'the rest of the file is still read');
});

t.test('shell-vars: unterminated quote, CRLF, reassignment', async (t) => {
  const un = parseShellVars('A=1\nB="open\nC=3\n', 'u.conf');
  t.equal(un.vars.get('A')?.value, '1');
  t.notOk(un.vars.has('B'));
  t.notOk(un.vars.has('C'), 'a shell stops sourcing at the syntax error');
  t.match(find(un.diagnostics, 'unterminated-quote'), { severity: 'error', file: 'u.conf', line: 2 });
  const crlf = parseShellVars('A=yes\r\nB=no\r\n', 'w.conf');
  t.equal(crlf.vars.get('A')?.value, 'yes');
  t.match(find(crlf.diagnostics, 'crlf'), { severity: 'warning', file: 'w.conf' });
  const re = parseShellVars('A=1\nA=2\n', 'r.conf');
  t.equal(re.vars.get('A')?.value, '2');
  t.match(find(re.diagnostics, 'reassigned'), { severity: 'info', line: 2, key: 'A', message: /line 1/ });
});

// ---------------------------------------------------------------------------------------------
t.test("the seed's examples are byte copies of the seed", { skip: existsSync(SEED) ? false : `no seed at ${SEED}` }, async (t) => {
  const seed = readFileSync(SEED, 'utf8').split('\n');
  const lines = (a: number, b: number) => seed.slice(a - 1, b).join('\n') + '\n';
  t.equal(readFileSync(join(FIX, 'seed/openib-cm.conf'), 'utf8'), lines(53, 56));
  t.equal(readFileSync(join(FIX, 'seed/openib-ha.conf'), 'utf8'), lines(186, 188));
  t.equal(readFileSync(join(FIX, 'seed/openib-bond.conf'), 'utf8'), lines(224, 232));
});

t.test('seed §2: SET_IPOIB_CM=yes / IPOIB_MTU=65520 -> connected mode, MTU 65520', async (t) => {
  const file = join(FIX, 'seed/openib-cm.conf');
  const conf = parseOpenibConf(readFileSync(file, 'utf8'), file);
  t.same(conf.setIpoibCm, { value: true, line: 2 });
  t.same(conf.ipoibMtu, { value: 65520, line: 4 });
  t.same(noProblems(conf.diagnostics), []);
  const plan = buildPlan({ conf, ifcfgs: [], ports: ['ib0', 'ib1'] });
  t.equal(plan.ipoibLoaded, false, 'no IPOIB_LOAD=yes and no ifcfg files: IPoIB is not loaded');
  t.same(plan.interfaces, [], 'so no interface is planned');
  const loaded = buildPlan({ conf: parseOpenibConf(readFileSync(file, 'utf8') + 'IPOIB_LOAD=yes\n', file), ifcfgs: [], ports: ['ib0', 'ib1'] });
  for (const n of ['ib0', 'ib1']) {
    t.match(iface(loaded, n), { kind: 'physical', mode: 'connected', mtu: 65520, onboot: false });
    t.match(find(iface(loaded, n).warnings, 'mtu-above-2k'), { severity: 'info', message: /known issue 6/ }, 'MTU > 2K: the driver warning is noted');
  }
});

t.test('seed §5: the HA block gives ib0 primary, ib1 secondary', async (t) => {
  const file = join(FIX, 'seed/openib-ha.conf');
  const conf = parseOpenibConf(readFileSync(file, 'utf8'), file);
  t.same([conf.ipoibhaEnable, conf.primaryIpoibDev, conf.secondaryIpoibDev],
    [{ value: true, line: 1 }, { value: 'ib0', line: 2 }, { value: 'ib1', line: 3 }]);
  const ifcfgs = [parseIfcfg('DEVICE=ib0\nBOOTPROTO=static\nIPADDR=10.1.0.5\nNETMASK=255.255.0.0\n', `${RH_DIR}/ifcfg-ib0`)];
  const plan = buildPlan({ conf, ifcfgs, ports: ['ib0', 'ib1'] });
  t.match(iface(plan, 'ib0'), { haRole: 'primary', address: '10.1.0.5', prefix: 16 });
  t.match(iface(plan, 'ib1'), { haRole: 'secondary', addressing: 'none' });
  t.same(plan.ha?.takeover, { addressing: 'static', address: '10.1.0.5', prefix: 16, mode: 'datagram', mtu: 2044, clientIdentifierOf: null },
    "on failover ib1 takes ib0's configuration");
  t.same(noProblems(plan.warnings), []);
});

t.test('seed §6: the bond block, verbatim', async (t) => {
  const file = join(FIX, 'seed/openib-bond.conf');
  const conf = parseOpenibConf(readFileSync(file, 'utf8'), file);
  t.same(conf.ipoibBonds, { value: ['bond0', 'bond1'], line: 4 });
  t.same(conf.bonds.map((b) => [b.name, b.ip?.value, b.slaves?.value, b.ip?.line, b.slaves?.line]), [
    ['bond0', '10.10.10.1', ['ib0', 'ib1'], 6, 7],
    ['bond1', '20.10.10.1', ['ib2', 'ib3', 'ib4'], 8, 9],
  ]);
  t.same(noProblems(conf.diagnostics), []);
  const all = buildPlan({ conf, ifcfgs: [], ports: ['ib0', 'ib1', 'ib2', 'ib3', 'ib4'] });
  t.equal(all.ipoibLoaded, false, 'the block alone does not load IPoIB');
  t.match(find(all.warnings, 'bond-skipped'), { severity: 'warning' });

  const loaded = parseOpenibConf('IPOIB_LOAD=yes\n' + readFileSync(file, 'utf8'), file);
  const plan = buildPlan({ conf: loaded, ifcfgs: [], ports: ['ib0', 'ib1', 'ib2', 'ib3', 'ib4'] });
  t.same(plan.bonds.map((b) => [b.name, b.mode, b.slaves, b.primary, b.address, b.prefix]), [
    ['bond0', 'active-backup', ['ib0', 'ib1'], 'ib0', '10.10.10.1', 8],
    ['bond1', 'active-backup', ['ib2', 'ib3', 'ib4'], 'ib2', '20.10.10.1', 8],
  ]);
  t.same(plan.interfaces.map((i) => [i.name, i.kind, i.bondMaster, i.onboot]), [
    ['ib0', 'physical', 'bond0', true], ['ib1', 'physical', 'bond0', true], ['ib2', 'physical', 'bond1', true],
    ['ib3', 'physical', 'bond1', true], ['ib4', 'physical', 'bond1', true], ['bond0', 'bond', null, true], ['bond1', 'bond', null, true],
  ]);
  t.match(iface(plan, 'bond1'), { addressing: 'static', address: '20.10.10.1', slaves: ['ib2', 'ib3', 'ib4'] });
  t.match(find(plan.bonds[0]?.warnings ?? [], 'classful-prefix'), { file, line: 7, key: 'bond0_IP' }, 'line 6 of the block, after the IPOIB_LOAD line');

  // A host with two ports: bond1's slaves do not exist, so bond1 is not created; bond0 still is.
  const two = buildPlan({ conf: loaded, ifcfgs: [], ports: ['ib0', 'ib1'] });
  t.same(two.bonds.map((b) => b.name), ['bond0']);
  const missing = two.warnings.filter((d) => d.code === 'slave-missing');
  t.same(missing.map((d) => [d.file, d.line, d.key]), [[file, 10, 'bond1_SLAVES'], [file, 10, 'bond1_SLAVES'], [file, 10, 'bond1_SLAVES']]);
  t.match(find(two.warnings, 'bond-no-slaves'), { key: 'bond1_SLAVES', message: /bond1 has no usable slave; it is not created/ });
});

// ---------------------------------------------------------------------------------------------
t.test('openib.conf: every key of a real OFED file is known; unknown keys are warned, not fatal', async (t) => {
  const file = join(FIX, 'full/openib.conf');
  const conf = parseOpenibConf(readFileSync(file, 'utf8'), file);
  t.equal(conf.diagnostics.filter((d) => d.code === 'unknown-key').length, 0);
  const notes = conf.diagnostics.filter((d) => d.code === 'known-key-unused').map((d) => d.key);
  t.same(notes, ['NODE_DESC', 'NODE_DESC_TIME_BEFORE_UPDATE', 'UCM_LOAD', 'RDMA_CM_LOAD', 'RDMA_UCM_LOAD', 'RENICE_IB_MAD',
    'RUN_SYSCTL', 'MTHCA_LOAD', 'IPATH_LOAD', 'MLX4_LOAD', 'SDP_LOAD', 'SRP_LOAD', 'SRPHA_ENABLE', 'ISER_LOAD', 'RDS_LOAD', 'VNIC_LOAD']);
  t.match(find(conf.diagnostics, 'not-expanded'), { severity: 'warning', file, line: 6, key: 'NODE_DESC' });
  t.match(conf, {
    onboot: { value: true, line: 3 }, ipoibLoad: { value: true, line: 19 }, setIpoibCm: { value: true, line: 21 },
    ipoibMtu: { value: 65520, line: 23 }, ipoibhaEnable: { value: false, line: 26 }, primaryIpoibDev: { value: 'ib0', line: 27 },
    secondaryIpoibDev: { value: 'ib1', line: 28 }, ipoibbondEnable: { value: false, line: 31 }, ipoibBonds: { value: ['bond0'], line: 32 },
  });
  t.same(conf.bonds, [{ name: 'bond0', listed: true, ip: { value: '10.10.10.1', line: 33 }, slaves: { value: ['ib0', 'ib1'], line: 34 } }]);
  t.equal(conf.other['NODE_DESC'], '$(hostname -s)');

  const odd = parseOpenibConf('IPOIB_LOAD=yes\nIPOIB_FOO=1\nSET_IPOIB_CM=Yes\nSDP_LOAD=maybe\nIPOIB_MTU=64k\nPRIMARY_IPOIB_DEV="ib 0"\nbond7_IP=1.2.3.4\n', 'o.conf');
  t.match(find(odd.diagnostics, 'unknown-key'), { severity: 'warning', file: 'o.conf', line: 2, key: 'IPOIB_FOO' });
  const yn = odd.diagnostics.filter((d) => d.code === 'bad-yes-no');
  t.same(yn.map((d) => [d.severity, d.file, d.line, d.key]), [['error', 'o.conf', 3, 'SET_IPOIB_CM'], ['error', 'o.conf', 4, 'SDP_LOAD']]);
  t.match(yn[0]?.message, /'Yes' is not yes or no/, 'the error names the value');
  t.equal(formatDiagnostic(yn[0] as Diagnostic), "error: o.conf:3: SET_IPOIB_CM: 'Yes' is not yes or no; openibd compares with 'yes', so it acts as no");
  t.same(odd.setIpoibCm, { value: false, line: 3 });
  t.match(find(odd.diagnostics, 'bad-mtu'), { severity: 'error', line: 5, key: 'IPOIB_MTU', message: /'64k'/ });
  t.match(find(odd.diagnostics, 'bad-interface-name'), { line: 6, key: 'PRIMARY_IPOIB_DEV' });
  t.match(find(odd.diagnostics, 'bond-not-listed'), { severity: 'warning', line: 7, key: 'bond7_IP' });
  const plan = buildPlan({ conf: odd, ifcfgs: [], ports: ['ib0'] });
  t.match(iface(plan, 'ib0'), { mode: 'datagram', mtu: 2044 }, 'the plan still runs, with SET_IPOIB_CM acting as no');
});

// ---------------------------------------------------------------------------------------------
t.test('ifcfg: the RedHat layout, scanned from a directory', async (t) => {
  const dir = join(FIX, 'redhat/network-scripts');
  const scan = scanIfcfgDir(dir);
  t.same(scan.ifcfgs.map((c) => c.configName), ['ib0', 'ib0.8002', 'ib1'], 'ifcfg-ib* only, natural order; eth0 and the backup skipped');
  t.match(find(scan.diagnostics, 'backup-file-skipped'), { file: join(dir, 'ifcfg-ib1~') });
  const [ib0, child, ib1] = scan.ifcfgs;
  t.match(ib0, { layout: 'redhat', device: 'ib0', kind: 'physical', addressing: 'static', address: '172.31.0.254', prefix: 24,
    mtu: { value: 65520, line: 11 }, connectedMode: { value: true, key: 'CONNECTED_MODE' }, onboot: true, name: 'ib0', type: 'InfiniBand' });
  t.match(child, { device: 'ib0.8002', kind: 'child', parent: 'ib0', pkey: 0x8002, addressing: 'static', address: '172.31.2.254' });
  t.match(ib1, { device: 'ib1', addressing: 'dhcp', onboot: false, connectedMode: { value: false } });
  for (const c of scan.ifcfgs) t.same(noProblems(c.diagnostics), [], `${c.configName}: nothing to report`);
  t.same(ib0?.diagnostics.filter((d) => d.code === 'known-key-unused').map((d) => d.key), ['NETWORK', 'BROADCAST', 'IPV6INIT']);
});

t.test('ifcfg: the SuSE layout (STARTMODE, IPADDR/prefix, IPOIB_MODE, child from the file name)', async (t) => {
  const dir = join(FIX, 'suse/sysconfig/network');
  const scan = scanIfcfgDir(dir);
  const [ib0, child, ib1] = scan.ifcfgs;
  t.match(ib0, { layout: 'suse', device: 'ib0', addressing: 'static', address: '192.168.20.1', prefix: 24, onboot: true,
    connectedMode: { value: true, key: 'IPOIB_MODE' }, mtu: { value: 65520 }, name: 'Mellanox HCA port 1' });
  t.match(ib1, { device: 'ib1', address: '192.168.21.1', prefix: 24, onboot: true, connectedMode: { value: false, key: 'IPOIB_MODE' } });
  t.match(child, { device: 'ib0.8001', kind: 'child', parent: 'ib0', pkey: 0x8001, addressing: 'dhcp', onboot: true });

  const custom = parseIfcfg("IPOIB=yes\nIPOIB_DEVICE=ib1\nIPOIB_PKEY=8002\nSTARTMODE=auto\nBOOTPROTO=dhcp\n", `${SUSE_DIR}/ifcfg-custom1`);
  t.match(custom, { layout: 'suse', device: 'ib1.8002', parent: 'ib1', pkey: 0x8002, addressing: 'dhcp' }, 'ifcfg-ipoib(5) IPOIB_DEVICE/IPOIB_PKEY');
  const modes: [string, boolean][] = [['manual', false], ['off', false], ['auto', true], ['onboot', true], ['hotplug', true], ['nfsroot', true]];
  for (const [m, up] of modes) t.equal(parseIfcfg(`STARTMODE=${m}\n`, `${SUSE_DIR}/ifcfg-ib0`).onboot, up, `STARTMODE=${m}`);
  const none = parseIfcfg("BOOTPROTO='static'\nIPADDR=10.0.0.1/24\n", `${SUSE_DIR}/ifcfg-ib0`);
  t.equal(none.onboot, false, 'no STARTMODE: SuSE defaults to manual');
  t.match(find(none.diagnostics, 'startmode-default'), { severity: 'info' });
  const bad = parseIfcfg('STARTMODE=sometimes\nONBOOT=yes\nPKEY=yes\n', `${SUSE_DIR}/ifcfg-ib0`);
  t.match(find(bad.diagnostics, 'bad-startmode'), { severity: 'error', line: 1, key: 'STARTMODE' });
  t.same(bad.diagnostics.filter((d) => d.code === 'layout-key').map((d) => d.key), ['PKEY', 'ONBOOT'], 'RedHat keys in a SuSE file are reported');
  const rh = parseIfcfg('DEVICE=ib0\nSTARTMODE=auto\nIPOIB_MODE=connected\nCONNECTED_MODE=no\n', `${RH_DIR}/ifcfg-ib0`);
  t.equal(rh.onboot, true, 'RedHat: ONBOOT missing means brought up at boot');
  t.match(find(rh.diagnostics, 'layout-key'), { key: 'STARTMODE' });
  t.match(find(rh.diagnostics, 'mode-conflict'), { key: 'IPOIB_MODE' });
  t.equal(rh.connectedMode?.value, false, 'CONNECTED_MODE is the RedHat key and wins');
});

t.test('ifcfg: RedHat P_Key children, addressing and bad values name file, line and key', async (t) => {
  const f = `${RH_DIR}/ifcfg-ib0.8001`;
  t.match(parseIfcfg('DEVICE=ib0.8001\nPHYSDEV=ib0\nPKEY=yes\nPKEY_ID=0x8001\n', f), { device: 'ib0.8001', parent: 'ib0', pkey: 0x8001, kind: 'child' });
  t.match(parseIfcfg('PHYSDEV=ib0\nPKEY=yes\nPKEY_ID=1\n', f), { device: 'ib0.8001', pkey: 0x8001 }, 'the full-membership bit is added');
  t.match(parseIfcfg('DEVICE=ib0.8001\nPKEY=yes\n', f), { device: 'ib0.8001', parent: 'ib0', pkey: 0x8001 }, 'both taken from DEVICE');
  const oct = parseIfcfg('PHYSDEV=ib0\nPKEY=yes\nPKEY_ID=010\n', f);
  t.match(oct, { device: 'ib0.8008' });
  t.match(find(oct.diagnostics, 'octal-pkey'), { line: 3, key: 'PKEY_ID' });
  const zero = parseIfcfg('DEVICE=ib0.8000\nPHYSDEV=ib0\nPKEY=yes\nPKEY_ID=0\n', f);
  t.match(zero, { kind: 'physical' });
  t.match(find(zero.diagnostics, 'bad-pkey'), { severity: 'error', file: f, line: 4, key: 'PKEY_ID' });
  t.same(parseIfcfg('PHYSDEV=ib0\nPKEY_ID=1\n', f).diagnostics.filter((d) => d.code === 'pkey-without-pkey-yes').map((d) => d.key), ['PKEY_ID', 'PHYSDEV']);

  const g = `${RH_DIR}/ifcfg-ib0`;
  const typo = parseIfcfg("DEVICE=ib0\nBOOTPROTO='dchp'\n", g);
  t.match(find(typo.diagnostics, 'bad-bootproto'), { severity: 'error', file: g, line: 2, key: 'BOOTPROTO', message: /'dchp'.*did you mean 'dhcp'/ });
  t.equal(typo.addressing, 'none');
  const dhcpAddr = parseIfcfg('BOOTPROTO=dhcp\nIPADDR=10.0.0.9\n', g);
  t.match(dhcpAddr, { addressing: 'dhcp', address: null });
  t.match(find(dhcpAddr.diagnostics, 'address-ignored'), { line: 2, key: 'IPADDR' });
  t.match(parseIfcfg('IPADDR=10.0.0.9\n', g), { addressing: 'static', prefix: 8 }, 'no BOOTPROTO and no mask: static, classful /8');
  t.match(parseIfcfg('BOOTPROTO=none\n', g), { addressing: 'none' });
  t.match(parseIfcfg('BOOTPROTO=bootp\n', g), { addressing: 'dhcp' });
  const badIp = parseIfcfg('DEVICE=ib0\nIPADDR=10.0.0.300\nNETMASK=255.0.255.0\nMTU=big\nCONNECTED_MODE=perhaps\nONBOOT=maybe\nTYPE=Ethernet\nFROB=1\n', g);
  t.same(badIp.diagnostics.filter((d) => d.severity !== 'info').map((d) => [d.code, d.line, d.key]), [
    ['bad-type', 7, 'TYPE'], ['bad-address', 2, 'IPADDR'], ['bad-mtu', 4, 'MTU'], ['bad-yes-no', 5, 'CONNECTED_MODE'],
    ['bad-yes-no', 6, 'ONBOOT'], ['unknown-key', 8, 'FROB'],
  ]);
  const prefix = parseIfcfg('IPADDR=10.0.0.9\nPREFIX=16\nNETMASK=255.255.255.0\n', g);
  t.equal(prefix.prefix, 16, 'PREFIX wins over NETMASK, as ifup-eth reads them');
  t.match(find(prefix.diagnostics, 'prefix-conflict'), { key: 'NETMASK' });
  const mism = parseIfcfg('DEVICE=ib1\n', g);
  t.equal(mism.device, 'ib1');
  t.match(find(mism.diagnostics, 'device-name-mismatch'), { line: 1, key: 'DEVICE' });
});

// ---------------------------------------------------------------------------------------------
t.test('plan: mode and MTU rules (§2), overrides, and MTUs the mode cannot carry', async (t) => {
  const cm = 'IPOIB_LOAD=yes\nSET_IPOIB_CM=yes\n';
  const p1 = planOf(cm, { ib0: 'DEVICE=ib0\n', ib1: 'DEVICE=ib1\nCONNECTED_MODE=no\n', ib2: 'DEVICE=ib2\nMTU=9000\n' });
  t.match(iface(p1, 'ib0'), { mode: 'connected', mtu: 65520 }, 'connected mode: MTU defaults to the maximum');
  t.match(iface(p1, 'ib1'), { mode: 'datagram', mtu: 2044 }, 'an ifcfg CONNECTED_MODE=no overrides');
  t.match(iface(p1, 'ib2'), { mode: 'connected', mtu: 9000 }, 'an ifcfg MTU overrides');
  t.match(iface(planOf('IPOIB_LOAD=yes\nSET_IPOIB_CM=yes\nIPOIB_MTU=32000\n', { ib0: '' }), 'ib0'), { mtu: 32000 });
  const dg = planOf('IPOIB_LOAD=yes\nSET_IPOIB_CM=no\nIPOIB_MTU=32000\n', { ib0: '', ib1: 'CONNECTED_MODE=yes\n' });
  t.match(iface(dg, 'ib0'), { mode: 'datagram', mtu: 2044 });
  t.match(iface(dg, 'ib1'), { mode: 'connected', mtu: 32000 });
  t.match(find(dg.warnings, 'ipoib-mtu-unused'), { severity: 'info', key: 'IPOIB_MTU' });

  const bad = planOf('IPOIB_LOAD=yes\nSET_IPOIB_CM=no\n', {
    ib0: 'DEVICE=ib0\nMTU=4000\n', ib1: 'DEVICE=ib1\nCONNECTED_MODE=yes\nMTU=70000\n', ib2: 'DEVICE=ib2\nMTU=60\n', ib3: 'DEVICE=ib3\nMTU=1500\n',
  });
  const oor = bad.warnings.filter((d) => d.code === 'mtu-out-of-range');
  t.same(oor.map((d) => [d.file, d.line, d.key]), [[`${RH_DIR}/ifcfg-ib0`, 2, 'MTU'], [`${RH_DIR}/ifcfg-ib1`, 3, 'MTU'], [`${RH_DIR}/ifcfg-ib2`, 2, 'MTU']]);
  t.match(oor[0]?.message, /MTU 4000 cannot be carried in datagram mode .*ib0 uses 2044/);
  t.same(bad.interfaces.map((i) => [i.name, i.mode, i.mtu]),
    [['ib0', 'datagram', 2044], ['ib1', 'connected', 65520], ['ib2', 'datagram', 2044], ['ib3', 'datagram', 1500]],
    'each falls back to its mode maximum, the rest of the plan is unchanged');
  t.match(find(iface(bad, 'ib0').warnings, 'mtu-out-of-range'), { key: 'MTU' }, 'the interface carries its warning');
  const confMtu = planOf('IPOIB_LOAD=yes\nSET_IPOIB_CM=yes\nIPOIB_MTU=70000\n', { ib0: '' });
  t.match(find(confMtu.warnings, 'mtu-out-of-range'), { file: '/etc/infiniband/openib.conf', line: 3, key: 'IPOIB_MTU' });
  t.equal(iface(confMtu, 'ib0').mtu, 65520);
  t.equal(iface(bad, 'ib3').warnings.length, 0, 'an MTU <= 2044 gets no driver warning');
});

t.test('plan: known issue 4 — IPOIB_LOAD=no does not prevent loading when ifcfg-ib<n> exist', async (t) => {
  const p = planOf('# no IPoIB please\nIPOIB_LOAD=no\n', { ib0: 'DEVICE=ib0\nBOOTPROTO=dhcp\n', ib1: 'DEVICE=ib1\nIPADDR=10.0.0.2\nPREFIX=24\n' });
  t.equal(p.ipoibLoaded, true);
  t.same(p.interfaces.map((i) => [i.name, i.addressing, i.onboot]), [['ib0', 'dhcp', true], ['ib1', 'static', true]], 'they are brought up');
  const w = find(p.warnings, 'ipoib-load-ignored');
  t.match(w, { severity: 'warning', file: '/etc/infiniband/openib.conf', line: 2, key: 'IPOIB_LOAD' });
  t.match(w?.message, /IPOIB_LOAD=no does not prevent loading IPoIB: ifcfg-ib0, ifcfg-ib1 exist .*known issue 4/);
  const none = planOf('IPOIB_LOAD=no\n', {}, { ports: ['ib0'] });
  t.equal(none.ipoibLoaded, false);
  t.same(none.interfaces, []);
  t.notOk(find(none.warnings, 'ipoib-load-ignored'));
});

t.test('plan: HA (§5) defaults, takeover with DHCP, and misconfigurations', async (t) => {
  const dhcp = planOf('IPOIB_LOAD=yes\nIPOIBHA_ENABLE=yes\n', { ib0: 'BOOTPROTO=dhcp\n' }, { ports: ['ib0', 'ib1'] });
  t.same(dhcp.interfaces.map((i) => [i.name, i.haRole]), [['ib0', 'primary'], ['ib1', 'secondary']], 'defaults ib0/ib1 as ipoib_ha.pl');
  t.match(dhcp.ha, { primary: 'ib0', secondary: 'ib1', takeover: { addressing: 'dhcp', clientIdentifierOf: 'ib0' } },
    "the secondary keeps the primary's client identifier, so the lease survives");
  const swapped = planOf('IPOIB_LOAD=yes\nIPOIBHA_ENABLE=yes\nPRIMARY_IPOIB_DEV=ib1\nSECONDARY_IPOIB_DEV=ib0\n',
    { ib0: 'IPADDR=10.0.0.1/24\n', ib1: 'IPADDR=10.0.0.2\nPREFIX=24\n' });
  t.match(swapped.ha, { primary: 'ib1', secondary: 'ib0', takeover: { address: '10.0.0.2', prefix: 24 } });
  t.match(find(iface(swapped, 'ib0').warnings, 'ha-secondary-replaced'), { severity: 'info' });
  const same = planOf('IPOIB_LOAD=yes\nIPOIBHA_ENABLE=yes\nPRIMARY_IPOIB_DEV=ib0\nSECONDARY_IPOIB_DEV=ib0\n', { ib0: '' });
  t.match(find(same.warnings, 'ha-not-started'), { line: 4, key: 'SECONDARY_IPOIB_DEV' });
  t.equal(same.ha, null);
  const missing = planOf('IPOIB_LOAD=yes\nIPOIBHA_ENABLE=yes\n', { ib0: 'BOOTPROTO=dhcp\n' });
  t.match(find(missing.warnings, 'ha-not-started'), { key: 'SECONDARY_IPOIB_DEV', message: /ib1 \(the default\) is not an IPoIB interface/ });
  t.equal(iface(missing, 'ib0').addressing, 'dhcp', 'the rest of the plan still runs');
  const empty = planOf('IPOIB_LOAD=yes\nIPOIBHA_ENABLE=yes\n', {}, { ports: ['ib0', 'ib1'] });
  t.match(find(empty.warnings, 'ha-nothing-to-take'), { severity: 'warning' });
});

t.test('plan: bonding (§6) — missing keys, HA, conflicts, ifcfg-bond files', async (t) => {
  const ports = ['ib0', 'ib1', 'ib2', 'ib3'];
  const noIp = planOf('IPOIB_LOAD=yes\nIPOIBBOND_ENABLE=yes\nIPOIB_BONDS=bond0,bond1,bond2\nbond0_SLAVES=ib0\nbond1_IP=10.1.1.1\nbond2_IP=10.2.2.2/24\nbond2_SLAVES=ib2,ib3\n', {}, { ports });
  const inc = noIp.warnings.filter((d) => d.code === 'bond-incomplete');
  t.same(inc.map((d) => [d.key, d.line]), [['bond0_IP', 3], ['bond1_SLAVES', 3]], 'each names what is missing');
  t.match(inc[0]?.message, /bond0_IP is missing: bond0 is not created/);
  t.same(noIp.bonds.map((b) => [b.name, b.prefix]), [['bond2', 24]], 'the complete bond is still created');

  const ha = planOf('IPOIB_LOAD=yes\nIPOIBHA_ENABLE=yes\nIPOIBBOND_ENABLE=yes\nIPOIB_BONDS=bond0\nbond0_IP=10.0.0.1\nbond0_SLAVES=ib0,ib1\n',
    { ib0: 'IPADDR=10.0.0.5/24\n' }, { ports });
  t.same(ha.bonds, [], 'no bond when the HA service is configured');
  t.match(find(ha.warnings, 'bond-skipped-ha'), { line: 3, key: 'IPOIBBOND_ENABLE', message: /The ib-bonding driver doesn't load when the HA service is configured to load/ });
  t.match(find(ha.warnings, 'ha-bond-conflict'), { line: 6, key: 'bond0_SLAVES', message: /ib0, ib1 are both a slave of bond0 and an HA device/ });
  t.match(ha.ha, { primary: 'ib0', secondary: 'ib1' }, 'HA itself still runs');

  const clash = planOf('IPOIB_LOAD=yes\nIPOIBBOND_ENABLE=yes\nIPOIB_BONDS=bond0,bond1\nbond0_IP=10.0.0.1/24\nbond0_SLAVES=ib0,ib1\nbond1_IP=10.0.1.1/24\nbond1_SLAVES=ib1,ib7,ib2\n',
    { ib0: 'IPADDR=10.0.0.5/24\n' }, { ports });
  t.same(clash.bonds.map((b) => [b.name, b.slaves]), [['bond0', ['ib0', 'ib1']], ['bond1', ['ib2']]]);
  t.match(find(clash.warnings, 'slave-in-two-bonds'), { line: 7, key: 'bond1_SLAVES', message: /ib1 is already a slave of bond0/ });
  t.match(find(clash.warnings, 'slave-missing'), { line: 7, key: 'bond1_SLAVES', message: /ib7 does not exist/ });
  t.match(find(clash.warnings, 'slave-address-ignored'), { file: `${RH_DIR}/ifcfg-ib0`, key: 'IPADDR' });
  t.match(iface(clash, 'ib0'), { addressing: 'none', bondMaster: 'bond0' });

  const off = planOf('IPOIB_LOAD=yes\nIPOIB_BONDS=bond0\nbond0_IP=1.1.1.1\nbond0_SLAVES=ib0\n', {}, { ports });
  t.same(off.bonds, []);
  t.match(find(off.warnings, 'bonding-disabled'), { severity: 'info' });

  const rh = planOf('IPOIB_LOAD=yes\n', {
    bond0: 'DEVICE=bond0\nIPADDR=10.3.0.1\nNETMASK=255.255.255.0\nONBOOT=yes\nBONDING_OPTS="mode=balance-rr miimon=50 primary=ib1"\n',
    ib0: 'DEVICE=ib0\nMASTER=bond0\nSLAVE=yes\n', ib1: 'DEVICE=ib1\nMASTER=bond0\nSLAVE=yes\n', ib2: 'DEVICE=ib2\nMASTER=bond9\nSLAVE=yes\n',
  });
  t.match(rh.bonds, [{ name: 'bond0', mode: 'active-backup', slaves: ['ib0', 'ib1'], primary: 'ib1', miimonMs: 50, address: '10.3.0.1', prefix: 24 }]);
  t.match(find(rh.warnings, 'bond-mode'), { file: `${RH_DIR}/ifcfg-bond0`, line: 5, key: 'BONDING_OPTS', message: /only active-backup/ });
  t.match(find(rh.warnings, 'no-such-bond'), { file: `${RH_DIR}/ifcfg-ib2`, key: 'MASTER' });
  t.match(iface(rh, 'bond0'), { kind: 'bond', configFile: `${RH_DIR}/ifcfg-bond0`, slaves: ['ib0', 'ib1'] });

  const suse = planOf('IPOIB_LOAD=yes\n', {
    bond0: "BOOTPROTO='static'\nIPADDR='10.4.0.1/16'\nSTARTMODE='onboot'\nBONDING_MASTER='yes'\nBONDING_SLAVE0='ib0'\nBONDING_SLAVE1='ib1'\nBONDING_MODULE_OPTS='mode=active-backup miimon=100'\n",
    ib0: "STARTMODE='hotplug'\nBOOTPROTO='none'\n", ib1: "STARTMODE='hotplug'\nBOOTPROTO='none'\n",
  }, { layout: 'suse' });
  t.match(suse.bonds, [{ name: 'bond0', slaves: ['ib0', 'ib1'], address: '10.4.0.1', prefix: 16, miimonMs: 100 }]);
  t.same(noProblems(suse.warnings), []);
});

t.test('plan: known issue 2b (SuSE: ib1 uses the configuration script of ib0) is not reproduced', async (t) => {
  const p = planOf('IPOIB_LOAD=yes\n', { ib0: "BOOTPROTO='static'\nIPADDR='10.0.0.1/24'\nSTARTMODE='auto'\n" }, { layout: 'suse', ports: ['ib0', 'ib1'] });
  t.match(iface(p, 'ib1'), { addressing: 'none', address: null, configName: null }, "ib1 does not get ib0's address");
  t.match(find(iface(p, 'ib1').warnings, 'suse-config-name'), { message: /SuSE 10's ifup would configure it from ifcfg-ib0 \(known issue 2b\)/ });
  const both = planOf('IPOIB_LOAD=yes\n', {
    ib0: "IPADDR='10.0.0.1/24'\nSTARTMODE='auto'\n", ib1: "IPADDR='10.0.0.2/24'\nSTARTMODE='auto'\n",
  }, { layout: 'suse' });
  t.match(iface(both, 'ib1'), { address: '10.0.0.2', configName: 'ib1' }, "ib1's own file is used");
  t.match(find(iface(both, 'ib1').warnings, 'suse-config-name'), { message: /ifup ib1 ib1/ });
  t.notOk(find(iface(both, 'ib0').warnings, 'suse-config-name'));
  const redhat = planOf('IPOIB_LOAD=yes\n', { ib0: 'IPADDR=10.0.0.1/24\n' }, { ports: ['ib0', 'ib1'] });
  t.notOk(find(redhat.warnings, 'suse-config-name'), 'RedHat is not affected');
});

t.test('plan: known issue 1 — two IP subnets on one partition', async (t) => {
  const two = planOf('IPOIB_LOAD=yes\n', { ib0: 'IPADDR=10.0.0.1\nPREFIX=24\n', ib1: 'IPADDR=10.0.1.1\nPREFIX=24\n' });
  const w = find(two.warnings, 'two-subnets-one-partition');
  t.match(w?.message, /ib0 \(10\.0\.0\.0\/24\) and ib1 \(10\.0\.1\.0\/24\) are different IP subnets on one partition \(P_Key 0xffff\)/);
  t.match(w?.message, /arp_ignore=2/);
  t.match(w?.message, /arp_filter/);
  t.ok(find(iface(two, 'ib0').warnings, 'two-subnets-one-partition') && find(iface(two, 'ib1').warnings, 'two-subnets-one-partition'));
  t.notOk(find(planOf('IPOIB_LOAD=yes\n', { ib0: 'IPADDR=10.0.0.1/24\n', ib1: 'IPADDR=10.0.0.2/24\n' }).warnings, 'two-subnets-one-partition'),
    'one subnet: nothing to say');
  const parts = planOf('IPOIB_LOAD=yes\n', {
    ib0: 'IPADDR=10.0.0.1/24\n', 'ib0.8002': 'PHYSDEV=ib0\nPKEY=yes\nPKEY_ID=2\nIPADDR=10.9.0.1/24\n',
  });
  t.notOk(find(parts.warnings, 'two-subnets-one-partition'), 'different partitions may carry different subnets');
  const sameChild = planOf('IPOIB_LOAD=yes\n', {
    'ib0.8002': 'PHYSDEV=ib0\nPKEY=yes\nPKEY_ID=2\nIPADDR=10.9.0.1/24\n', 'ib1.8002': 'PHYSDEV=ib1\nPKEY=yes\nPKEY_ID=0x8002\nIPADDR=10.8.0.1/24\n',
  });
  t.match(find(sameChild.warnings, 'two-subnets-one-partition')?.message, /P_Key 0x8002/);
});

t.test('plan: children need their parent port; ports not on the host are reported', async (t) => {
  const p = planOf('IPOIB_LOAD=yes\n', {
    ib0: '', ib5: 'DEVICE=ib5\n', 'ib3.8001': 'PHYSDEV=ib3\nPKEY=yes\nPKEY_ID=1\n', 'ib0.8001': 'PHYSDEV=ib0\nPKEY=yes\nPKEY_ID=1\nBOOTPROTO=dhcp\n',
  }, { ports: ['ib0', 'ib1'] });
  t.same(p.interfaces.map((i) => [i.name, i.kind]), [['ib0', 'physical'], ['ib1', 'physical'], ['ib0.8001', 'child']]);
  t.match(find(p.warnings, 'no-such-port'), { file: `${RH_DIR}/ifcfg-ib5`, line: 1, key: 'DEVICE' });
  t.match(find(p.warnings, 'no-such-parent'), { file: `${RH_DIR}/ifcfg-ib3.8001`, line: 1, key: 'PHYSDEV' });
  t.match(iface(p, 'ib0.8001'), { parent: 'ib0', pkey: 0x8001, addressing: 'dhcp' });
  const dup = planOf('IPOIB_LOAD=yes\n', { ib0: 'DEVICE=ib0\n', ib9: 'DEVICE=ib0\n' });
  t.match(find(dup.warnings, 'duplicate-device'), { file: `${RH_DIR}/ifcfg-ib9`, key: 'DEVICE' });
});

// ---------------------------------------------------------------------------------------------
const HOSTS: [string, string][] = [
  ['node1', 'network-scripts'], ['node2', 'network-scripts'], ['node3', 'sysconfig/network'], ['node4', 'network-scripts'],
];
const hostPlan = (n: string, d: string): BootPlan =>
  loadBootPlan({ conf: join(FIX, 'hosts', n, 'openib.conf'), ifcfgDir: join(FIX, 'hosts', n, d), ports: ['ib0', 'ib1'], host: n });

t.test('the 4-host fixture set', async (t) => {
  const plans = Object.fromEntries(HOSTS.map(([n, d]) => [n, hostPlan(n, d)])) as Record<string, BootPlan>;
  for (const [n, p] of Object.entries(plans)) t.same(noProblems(p.warnings), [], `${n}: no warnings or errors`);
  const row = (p: BootPlan) => p.interfaces.map((i) => [i.name, i.kind, i.mode, i.mtu, i.addressing, i.address, i.prefix, i.onboot, i.haRole, i.bondMaster]);
  t.same(row(plans['node1'] as BootPlan), [
    ['ib0', 'physical', 'connected', 65520, 'static', '10.0.0.1', 24, true, 'none', null],
    ['ib1', 'physical', 'connected', 65520, 'static', '10.0.0.11', 24, true, 'none', null],
  ]);
  t.same(row(plans['node2'] as BootPlan), [
    ['ib0', 'physical', 'datagram', 2044, 'dhcp', null, null, true, 'none', null],
    ['ib1', 'physical', 'datagram', 2044, 'dhcp', null, null, true, 'none', null],
  ]);
  t.same(row(plans['node3'] as BootPlan), [
    ['ib0', 'physical', 'connected', 65520, 'dhcp', null, null, true, 'primary', null],
    ['ib1', 'physical', 'connected', 65520, 'none', null, null, true, 'secondary', null],
  ]);
  t.equal(plans['node3']?.layout, 'suse');
  t.same(plans['node3']?.ha?.takeover, { addressing: 'dhcp', address: null, prefix: null, mode: 'connected', mtu: 65520, clientIdentifierOf: 'ib0' });
  t.same(row(plans['node4'] as BootPlan), [
    ['ib0', 'physical', 'connected', 65520, 'none', null, null, true, 'none', 'bond0'],
    ['ib1', 'physical', 'connected', 65520, 'none', null, null, true, 'none', 'bond0'],
    ['bond0', 'bond', 'connected', 65520, 'static', '10.0.0.4', 24, true, 'none', null],
  ]);
  t.same(plans['node4']?.bonds.map((b) => [b.name, b.mode, b.slaves, b.primary, b.miimonMs]), [['bond0', 'active-backup', ['ib0', 'ib1'], 'ib0', 100]]);
  t.same(JSON.parse(JSON.stringify(plans['node4'])), plans['node4'], 'the plan survives JSON unchanged');
});

// ---------------------------------------------------------------------------------------------
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(args, { out: (s) => { out += s; }, err: (s) => { err += s; } });
    return { code, out, err };
  } finally {
    process.stderr.write = orig;
  }
}

t.test('ipoib-boot --dry-run --json: one entry per interface and bond', async (t) => {
  const r = await cli(['--dry-run', '--json', '--conf', join(FIX, 'hosts/node4/openib.conf'), '--ifcfg-dir', join(FIX, 'hosts/node4/network-scripts'), '--ports', 'ib0,ib1']);
  t.equal(r.code, 0);
  t.equal(r.err, '');
  const j = JSON.parse(r.out) as { interfaces: Record<string, unknown>[]; bonds: Record<string, unknown>[]; warnings: unknown[] };
  t.same(Object.keys(j).filter((k) => ['interfaces', 'bonds', 'warnings'].includes(k)).sort(), ['bonds', 'interfaces', 'warnings']);
  for (const e of j.interfaces) {
    for (const k of ['name', 'kind', 'mode', 'mtu', 'addressing', 'address', 'slaves', 'haRole', 'warnings']) t.ok(k in e, `interface ${String(e['name'])} has ${k}`);
  }
  t.same(j.interfaces.map((e) => e['name']), ['ib0', 'ib1', 'bond0']);
  t.same(j.bonds.map((b) => [b['name'], b['mode'], b['slaves'], b['address']]), [['bond0', 'active-backup', ['ib0', 'ib1'], '10.0.0.4']]);
  t.ok(Array.isArray(j.warnings));
  t.match(j.warnings[0], { severity: String, code: String, file: String, message: String });
});

t.test('ipoib-boot: the table, exit codes, one-line errors', async (t) => {
  const conf = join(FIX, 'hosts/node3/openib.conf');
  const dir = join(FIX, 'hosts/node3/sysconfig/network');
  const table = await cli(['restart', '--dry-run', '--conf', conf, '--ifcfg-dir', dir, '--ports', 'ib0,ib1', '--host', 'node3']);
  t.equal(table.code, 0);
  t.match(table.out, /^ipoib-boot restart plan for node3: /);
  t.match(table.out, /\nib0 +physical +- +- +connected +65520 +dhcp +- +yes +primary +-\n/);
  t.match(table.out, /HA: ib0 primary, ib1 secondary; on failover ib1 takes DHCP \(client identifier of ib0\), connected, MTU 65520/);
  t.match(table.out, /info notes not shown; -v shows them/);
  const verbose = await cli(['--dry-run', '-v', '--conf', conf, '--ifcfg-dir', dir, '--ports', 'ib0,ib1']);
  t.match(verbose.out, /info: .*known issue 2b/);

  const exec = await cli(['start', '--conf', conf, '--ifcfg-dir', dir]);
  t.equal(exec.code, 2, 'executing needs a fabric: usage error');
  t.equal(exec.err, 'ipoib-boot: start: --fabric HOST:PORT or --fabric inproc is required (or --dry-run)\n');
  t.equal(exec.out, '');

  const missing = await cli(['--dry-run', '--conf', join(tmp, 'nope.conf')]);
  t.equal(missing.code, 2);
  t.equal(missing.err, `ipoib-boot: ${join(tmp, 'nope.conf')}: no such file\n`);
  const noDir = await cli(['--dry-run', '--conf', conf, '--ifcfg-dir', join(tmp, 'nodir')]);
  t.equal(noDir.code, 2);
  t.match(noDir.err, /nodir: no such directory\n$/);
  t.equal((await cli(['reboot', '--dry-run', '--conf', conf])).code, 2);
  t.equal((await cli(['--json', '--conf', conf])).code, 2, '--json needs --dry-run');
  t.equal((await cli(['--dry-run', '--conf', conf, '--fabric', 'host:99999'])).code, 2);
  t.equal((await cli(['--dry-run'])).code, 2, '--conf is required');

  const badConf = join(tmp, 'bad.conf');
  writeFileSync(badConf, 'IPOIB_LOAD=yes\nSET_IPOIB_CM=si\n');
  const bad = await cli(['--dry-run', '--conf', badConf, '--ports', 'ib0']);
  t.equal(bad.code, 2, 'a configuration error: the plan is printed and the exit code is 2');
  t.match(bad.out, /\nib0 +physical .* datagram +2044 /);
  t.equal(bad.err, `ipoib-boot: 1 configuration error; first: error: ${badConf}:2: SET_IPOIB_CM: 'si' is not yes or no; openibd compares with 'yes', so it acts as no\n`);
});

t.test('bin/ipoib-boot runs as a user runs it', async (t) => {
  const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(root, 'bin/ipoib-boot'), '--dry-run', '--json',
    '--conf', join(FIX, 'hosts/node2/openib.conf'), '--ifcfg-dir', join(FIX, 'hosts/node2/network-scripts')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.same((JSON.parse(r.stdout) as BootPlan).interfaces.map((i) => [i.name, i.addressing]), [['ib0', 'dhcp'], ['ib1', 'dhcp']]);
});
