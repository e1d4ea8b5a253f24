// Post-training on conversations: the ChatML format and its vocabulary, rendering with loss masks, conversation
// data (JSONL readers, synthetic data), rows for training (packing and padding), new embedding rows, and chatting
// with a model (a session that keeps the conversation and the KV cache, the terminal REPL), and factuality: fictional
// biographies with questions about them, a judge of answers, probing what a model knows and refusal data.
export {
  CHAT_FORMAT_FILE,
  CHATML_MARKERS,
  ChatFormat,
  chatFormat,
  chatFormatJson,
  checkChatFormat,
  IM_END,
  IM_SEP,
  IM_START,
  readChatFormatInfo,
  resolveChatFormat,
  writeChatFormat,
} from './format.ts';
export type { ChatFormatInfo } from './format.ts';
export {
  CHAT_ROLES,
  chatmlText,
  checkMessages,
  isChatRole,
  renderConversation,
  renderPrompt,
  trainingExample,
} from './render.ts';
export type { ChatMessage, ChatRole, RenderedConversation, TrainingExample } from './render.ts';
export {
  CONVERSATION_FORMATS,
  ConversationDataError,
  detectFormat,
  INVALID_REASONS,
  newReadStats,
  parseConversationLine,
  readConversationFile,
  readConversations,
  SPECIAL_TEXT,
} from './data.ts';
export type { Conversation, ConversationFormat, InvalidReason, ReadOptions, ReadStats } from './data.ts';
export { conversationJsonl, synthConversation, synthConversations, synthCountries, writeSynthJsonl } from './synth.ts';
export { newRowBatch, packRows, planRows, writeRows } from './pack.ts';
export type { PackMode, PackOptions, PackStats, RowBatch, RowPlan } from './pack.ts';
export { initNewEmbeddingRows, NEW_ROW_NOISE, prepareModelForChat } from './embed.ts';
export { Rng } from './rng.ts';
export { ChatSession, chatFormatPath, checkModelForChat, ContextError, ReplyText } from './chat.ts';
export type { AskOptions, ChatReply, ChatSettings, StopReason } from './chat.ts';
export { HELP, parseReplLine, PROMPT, runRepl } from './repl.ts';
export type { ReplIo, ReplLine } from './repl.ts';
export { register, tokenLabel } from './cli.ts';
export type { ChatCliIo } from './cli.ts';
export { answerCases, ConversationRows, firstAnswerCase, sft } from './sft.ts';
export type { AnswerCase, AnswerResult, ConversationRowsOptions, SftOptions, SftResult } from './sft.ts';
export { accuracy, holdOut, loadConversations } from './sft-cli.ts';
export type { LoadedConversations } from './sft-cli.ts';
export {
  BIO_FACTS,
  BIO_FILES,
  biographyDocument,
  biographyDocuments,
  factQuestions,
  formatDate,
  makePeople,
  NAME_COUNT,
  questionConversation,
  questionJsonl,
  QUESTION_FORMS,
  TemplateQuestions,
  writeBioData,
} from './bio.ts';
export type {
  BioDataOptions,
  BioFact,
  BirthDate,
  DocumentOptions,
  FactQuestion,
  People,
  Person,
  QuestionSource,
} from './bio.ts';
export { isRefusal, MatchJudge, normaliseAnswer, REFUSALS, tokenF1 } from './judge.ts';
export type { Judge, MatchJudgeOptions, Verdict, VerdictKind } from './judge.ts';
export { askedFact, classify, factualityMetrics, mixCounts, mixRefusals, probeReport, refusalData } from './refusal.ts';
export type {
  AskedQuestion,
  Classified,
  ClassifyOptions,
  FactualityData,
  FactualityMetrics,
  Knowledge,
  MixOptions,
  ProbeReport,
} from './refusal.ts';
export { probe, probeJsonl, readProbed, readProbeQuestions, sampleReplies } from './probe.ts';
export type { ProbeQuestion, ProbeResult, SampleReplyOptions } from './probe.ts';
export { evaluateFactuality, factualityTable, verdictShare } from './factuality.ts';
export type { EvalQuestion, FactualityEval, JudgedReply } from './factuality.ts';
