// One rank of the device-select test: lists dawn.node's adapters, selects Vulkan device LOCAL_RANK of the
// device-select layer's list with selectionEnv, and lists them again in this process (a new Dawn instance). Writes
// both lists to OUT_DIR/select-rank<R>.json; a line on stderr separates what Dawn printed before and after.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listAdapters } from '../src/device.ts';
import { applyEnv, readDistEnv, selectionEnv, vulkanDeviceListing } from '../src/dist/index.ts';

const [out] = process.argv.slice(2);
const env = readDistEnv();
const before = await listAdapters();
const listing = await vulkanDeviceListing();
if (!listing.devices) throw new Error(`device-select layer ${listing.why}`);
const device = listing.devices[env.localRank]!;
const sel = selectionEnv(listing.devices, device);
process.stderr.write('--- selected\n');
applyEnv(sel);
const after = await listAdapters();
writeFileSync(join(out!, `select-rank${env.rank}.json`), JSON.stringify({ device, env: sel, before, after }));
process.exit(0);
