// Tokenizer bench: BPE training time (1,000-token vocabulary on 10 MB of farm-like text) and encode/decode
// throughput, beside the @huggingface/tokenizers JS port on the same file and text.
// npm run bench -- tokenizer [--quick] [--mb 10] [--vocab 1000]
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Tokenizer, trainBpe, type TrainStats } from '../ts/tokenizer/index.ts';
import { syntheticFarmText } from '../ts/tokenizer/synthetic.ts';
import { emit, flag, median, quick, timeit } from './_lib.ts';

const mb = flag('mb', quick ? 2 : 10);
const vocabSize = flag('vocab', 1000);
const reps = quick ? 1 : 3;
const bench = 'tokenizer';

const corpus = syntheticFarmText(mb * 1e6, 1);
const corpusBytes = Buffer.byteLength(corpus);
const config = { corpus_mb: Number((corpusBytes / 1e6).toFixed(2)), vocab_size: vocabSize, pattern: 'llama3', text: 'synthetic farm records (ts/tokenizer/synthetic.ts)', threads: 1 };

let tok: Tokenizer | null = null;
const stats: Partial<TrainStats>[] = [];
const trainTimes = await timeit(() => { const s: Partial<TrainStats> = {}; tok = trainBpe(corpus, { vocabSize }, s); stats.push(s); }, reps, quick ? 0 : 1);
const trained = tok as unknown as Tokenizer;
emit({ bench, figure: 'train_s', value: median(trainTimes), unit: 's', config: { ...config, unique_words: stats[0].uniqueWords, merges: stats[0].merges }, reference: null });
emit({ bench, figure: 'train_count_words_s', value: median(stats.map((s) => s.seconds!.count)), unit: 's', config, reference: null });
emit({ bench, figure: 'train_merge_s', value: median(stats.map((s) => s.seconds!.merge)), unit: 's', config, reference: null });

// encode held-out text of the same kind
const held = syntheticFarmText(Math.min(mb, 4) * 1e6, 2);
const heldBytes = Buffer.byteLength(held);
const encodeConfig = { ...config, text_mb: Number((heldBytes / 1e6).toFixed(2)) };
const fresh = (): Tokenizer => new Tokenizer(trained.json);
const coldTimes = await timeit(() => fresh().encode(held), reps, 0);
emit({ bench, figure: 'encode_cold_mb_per_s', value: heldBytes / 1e6 / median(coldTimes), unit: 'MB/s', config: { ...encodeConfig, cache: 'cold (new tokenizer each run)' }, reference: null });

const hf = new HfTokenizer(trained.json as never, {} as never);
const hfTimes = await timeit(() => hf.encode(held, { add_special_tokens: false }), reps, 1);
const hfMbps = heldBytes / 1e6 / median(hfTimes);
const warmTimes = await timeit(() => trained.encode(held), reps, 1);
emit({
  bench, figure: 'encode_mb_per_s', value: heldBytes / 1e6 / median(warmTimes), unit: 'MB/s', config: { ...encodeConfig, cache: 'warm' },
  reference: { name: '@huggingface/tokenizers 0.2.0 (JS)', value: Number(hfMbps.toPrecision(4)), source: 'measured in the same run, same file and text' },
});

const ids = trained.encode(held);
emit({ bench, figure: 'bytes_per_token', value: heldBytes / ids.length, unit: 'bytes/token', config: encodeConfig, reference: null });
const decodeTimes = await timeit(() => trained.decode(ids), reps, 1);
emit({ bench, figure: 'decode_mb_per_s', value: heldBytes / 1e6 / median(decodeTimes), unit: 'MB/s', config: encodeConfig, reference: null });
