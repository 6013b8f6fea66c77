// The Logs Insights language as the editor sees it: its words and a forgiving tokenizer for
// highlighting. The server's parser (query/grammar.lark) stays the judge of what is valid;
// tests/web/test_vocabulary.py checks these lists against query/signatures.py and
// query/syntax_errors.py so the two cannot drift apart.

export const COMMANDS = [
  "fields", "display", "filter", "stats", "sort", "limit", "parse", "dedup",
  "SOURCE", "filterIndex", "pattern", "diff", "anomaly", "unmask",
];

export const KEYWORDS = ["and", "or", "not", "like", "in", "by", "as", "asc", "desc"];

export const BOOLEANS = ["true", "false"];

export const FUNCTIONS = [
  // string
  "isempty", "isblank", "concat", "ltrim", "rtrim", "trim", "strlen", "toupper", "tolower",
  "substr", "replace", "strcontains", "regexReplace", "startsWith", "endsWith", "urlencode",
  "urldecode", "base64encode", "base64decode", "decToHex", "hexToDec", "hexToAscii",
  // numeric
  "abs", "ceil", "floor", "greatest", "least", "log", "sqrt", "round", "haversine", "toNumber",
  "toDouble", "toInt", "toLong",
  // datetime
  "bin", "datefloor", "dateceil", "fromMillis", "toMillis", "now",
  // general
  "ispresent", "coalesce", "if", "case", "isNumeric", "messageSize", "queryStartTime",
  "queryEndTime", "queryTimeRange",
  // IP
  "isValidIp", "isValidIpV4", "isValidIpV6", "isIpInSubnet", "isIpv4InSubnet",
  "isIpv6InSubnet", "ipv4ToNumber",
];

export const AGGREGATES = [
  "count", "count_distinct", "sum", "avg", "min", "max", "pct", "stddev", "earliest", "latest",
  "sortsFirst", "sortsLast",
];

export const SYSTEM_FIELDS = ["@timestamp", "@message", "@logStream", "@log", "@ingestionTime", "@ptr"];

const lower = (words) => new Set(words.map((w) => w.toLowerCase()));
const COMMAND_SET = lower(COMMANDS);
const KEYWORD_SET = lower(KEYWORDS);
const BOOLEAN_SET = lower(BOOLEANS);
const FUNCTION_SET = lower([...FUNCTIONS, ...AGGREGATES]);
const AGGREGATE_SET = lower(AGGREGATES);

// Token kinds, which are also the CSS classes of the highlighter (tok-<kind>).
const RULES = [
  ["space", /[ \t\r\n]+/y],
  ["comment", /#[^\n]*/y],
  ["string", /"(?:\\.|[^"\\])*"?|'(?:\\.|[^'\\])*'?/y],
  ["backtick", /`[^`\n]*`?/y],
  ["period", /\d+(?![eE][+-]?\d)[A-Za-z]+/y],
  ["number", /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y],
  ["ident", /[A-Za-z_@][A-Za-z0-9_@]*(?:\.[A-Za-z0-9_@]+)*/y],
  ["pipe", /\|/y],
  ["operator", /=~|!=|<=|>=|[=<>!+\-*%^]/y],
  ["slash", /\//y],
  ["punct", /[(),[\]:]/y],
];
const REGEX = /\/(?:\\\/|[^/\n])+\/?/y;

/**
 * Split `text` into tokens {kind, text, start, end} that cover it exactly. Kinds: space,
 * comment, string, backtick, regex, period, number, command, keyword, boolean, function,
 * aggregate, field, system-field, pipe, operator, punct, error (anything else).
 */
export function tokenize(text) {
  const tokens = [];
  let pos = 0;
  let atCommand = true; // the next word is a command name
  const significant = []; // the tokens that are not space or comment
  while (pos < text.length) {
    let kind = "error";
    let length = 1;
    if (text[pos] === "/" && regexMayStart(significant)) {
      REGEX.lastIndex = pos;
      const m = REGEX.exec(text);
      if (m) {
        kind = "regex";
        length = m[0].length;
      }
    }
    if (kind === "error") {
      for (const [name, re] of RULES) {
        re.lastIndex = pos;
        const m = re.exec(text);
        if (m && m[0].length) {
          kind = name;
          length = m[0].length;
          break;
        }
      }
    }
    const word = text.slice(pos, pos + length);
    if (kind === "ident") kind = classifyWord(word, text, pos + length, atCommand);
    if (kind === "slash") kind = "operator";
    const token = { kind, text: word, start: pos, end: pos + length };
    tokens.push(token);
    if (kind !== "space" && kind !== "comment") {
      atCommand = kind === "pipe";
      significant.push(token);
    }
    pos += length;
  }
  return tokens;
}

function classifyWord(word, text, end, atCommand) {
  const key = word.toLowerCase();
  if (atCommand && COMMAND_SET.has(key)) return "command";
  if (KEYWORD_SET.has(key)) return "keyword";
  if (BOOLEAN_SET.has(key)) return "boolean";
  if (/^\s*\(/.test(text.slice(end, end + 40))) {
    if (AGGREGATE_SET.has(key)) return "aggregate";
    if (FUNCTION_SET.has(key)) return "function";
    return "call";
  }
  return word.startsWith("@") ? "system-field" : "field";
}

// Where the grammar's contextual lexer reads a regex: after `like`, `=~` and `parse`, and in
// `parse @message /re/` after the field; elsewhere `/` divides.
function regexMayStart(significant) {
  const previous = significant[significant.length - 1];
  if (previous === undefined) return false;
  const isParse = (t) => t !== undefined && t.kind === "command" && t.text.toLowerCase() === "parse";
  if (previous.kind === "operator") return previous.text === "=~";
  if (previous.kind === "keyword") return previous.text.toLowerCase() === "like";
  if (isParse(previous)) return true;
  const isField = ["field", "system-field", "backtick"].includes(previous.kind);
  return isField && isParse(significant[significant.length - 2]);
}

/**
 * Split a query into its commands at top-level pipes: [{name, text, start, end}]. Pipes inside
 * strings, regexes and comments do not split.
 */
export function commands(text) {
  const out = [];
  let start = 0;
  const tokens = tokenize(text);
  const flush = (end) => {
    const part = text.slice(start, end);
    const first = tokens.find((t) => t.start >= start && t.end <= end && t.kind !== "space" && t.kind !== "comment");
    if (part.trim()) out.push({ name: first ? first.text.toLowerCase() : "", text: part, start, end });
  };
  for (const token of tokens) {
    if (token.kind === "pipe") {
      flush(token.start);
      start = token.end;
    }
  }
  flush(text.length);
  return out;
}

/** Words to offer while typing `prefix` (case-insensitive), commands first at a command start. */
export function completions(prefix, { atCommand = false, fields = [] } = {}) {
  const p = prefix.toLowerCase();
  if (!p) return [];
  const pick = (words, kind) => words.filter((w) => w.toLowerCase().startsWith(p) && w.toLowerCase() !== p).map((w) => ({ word: w, kind }));
  if (atCommand) return pick(COMMANDS.filter((c) => c === c.toLowerCase() || c === "filterIndex"), "command");
  return [
    ...pick(SYSTEM_FIELDS, "system-field"),
    ...pick(fields, "field"),
    ...pick(AGGREGATES, "aggregate"),
    ...pick(FUNCTIONS, "function"),
    ...pick(KEYWORDS, "keyword"),
  ].slice(0, 12);
}

/** Is the position `pos` in `text` where a command name goes (start, or right after a pipe)? */
export function atCommandStart(text, pos) {
  const before = text.slice(0, pos).replace(/[A-Za-z_@][A-Za-z0-9_@.]*$/, "");
  const tokens = tokenize(before).filter((t) => t.kind !== "space" && t.kind !== "comment");
  return tokens.length === 0 || tokens[tokens.length - 1].kind === "pipe";
}
