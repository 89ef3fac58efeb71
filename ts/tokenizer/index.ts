// Tokenizers: byte-level BPE training for the farm world, and tokenizer.json loading for real models.
export { Tokenizer, padBatch, type AddedToken, type DecodeOptions, type EncodeOptions, type SpecialTokenNames } from './tokenizer.ts';
export { trainBpe, trainBpeJson, countWords, type TrainOptions, type TrainStats } from './trainer.ts';
export { BpeModel } from './bpe.ts';
export { GPT2_PATTERN, LLAMA3_PATTERN, compilePattern } from './regex.ts';
export { wellFormed, BYTE_TO_CHAR, byteFallbackToken } from './bytes.ts';
