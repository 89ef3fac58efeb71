// Datasets: record kinds and validation, JSONL / JSON / protobuf readers and writers, manifests, splits.
// (template.ts, the Alpaca prompt format, is exported from its own module.)
export * from './records.ts';
export { parseJsonl, parseJsonArray, parseJsonRecords, toJsonl, writeFileAtomic, writeJsonl, writeJsonArray } from './json.ts';
export { crc32, decodeRecords, encodeRecords, protoRoot, PROTO_PATH, readProtoRecords, writeProtoRecords } from './proto.ts';
export { withFileLock } from './lock.ts';
export { formatOf, readManifest, readRecords, sha256File, verifyManifest, writeManifest, writeRecords, type FileFormat } from './io.ts';
export { familyMix, generateSplits, panelPreferencePairs, PRESETS, resolveSizes, SPLIT_NAMES, writeSplits, type SplitName, type SplitSizes, type Splits } from './splits.ts';
