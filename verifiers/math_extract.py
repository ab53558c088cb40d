"""Find the final answer in a model response and clean its text, before any parsing.

What it does: text-level rules only (regular expressions and brace matching). Only the text after a closed
reasoning block (`</think>`) is searched: what the reasoning says is working, not the answer. In order of how
explicit the answer is: the last `\\boxed{}` (with nested braces, or the brace-less `\\boxed 4` of the MATH
dataset; adjacent boxes such as `\\boxed{1} and \\boxed{2}` are one multi-part answer), `<answer>...</answer>`,
GSM8K `#### N`, a cue such as "the final answer is" (also "Réponse :", "答案是"; after a cue, the first number, in
digits or in English words (`the answer is twenty-one`, `two thirds`, `negative four`, `one and a half`;
`verifiers.math_words`), is the answer, and a few words said last, `the answer is yes.`, are the answer; numbers
offered as alternatives, in digits or words, are a hedge), a short bare answer (one without digits by the words
after its last `is`: "The probability is one half."), the last math span of the last sentence, the last number (not
one that labels a step or a list item at the start of a line: `**5. FORMAT:**`, `Step 3:`). Without a box, tag,
`####` or cue, a response that says it is unfinished ("work in progress", "to be continued", "not finished yet") has
no answer; so has one with a `\\boxed{` or an `<answer>` tag never closed (anywhere, even
around a closed box), and one whose last cue is a label that rejects its value (`Not the answer: 42`, `Previous
answer: 42`, `错误答案：42`, `Answer (wrong): 42`, `Respuesta incorrecta: 42`), or that takes its answer back after
stating it (`\\boxed{42} is wrong.`, `42 (not the answer)`, `that can't be right`). After a cue, an estimate
(`probably around five`, `approximately 3.14`), a bound (`at least 42`), a denial (`not 42`), a guess (`42, I guess`)
or a question (`42?`) is not the value; nor, without a cue, is a value after a label naming the reference, a guess or
candidates (`Ground truth: 42`, `Hint: 42`) or one the text then rejects (`Try 42. Does not work.`); a box inside a box
belongs to the outer one. A response that asks its grader
to ignore its instructions or to give the reward has no answer.
Unicode superscripts are exponents (`x⁴` is `x^4`). `clean_answer` then removes LaTeX spacing and wrappers,
`\\text{}` units (not words that judge the value: `42 \\text{ wrong}`), currency, degrees and thousands
separators, and rewrites notations into ones the parser reads: repeating decimals (`0.\\overline{45}`,
`0.\\bar{45}`, `0.(45)`, `0.\\dot{3}`, `0.111\\ldots`) as exact fractions, a mixed number (`4 4/9`) as its
fraction, a whole answer in e-notation (`1.5e3`) as `1.5 \\times 10^{3}`, `\\mathbb{R}` and "all real numbers" as
`(-\\infty, \\infty)`, set-builder `\\{x \\mid x \\le 0\\}` as its condition and `\\{x \\in \\mathbb{Z} \\mid 1
\\le x \\le 3\\}` as the integers it bounds, angle brackets `\\langle 1, 2 \\rangle` (or `⟨1, 2⟩`) as a tuple,
unit vectors `2\\mathbf{i} - \\mathbf{j} + 3\\mathbf{k}` as `(2, -1, 3)`, the reals of one sign (`\\mathbb{R}^+`,
`\\mathbb{R}_{\\ge 0}`) as intervals, a clock time with zero seconds (`20:34:00`) as `20:34`, a whole answer in
number words (`\\text{four}`) as the number, an angle in degrees inside a trigonometric function in radians; it
drops a name or a cue written in words before the value (`\\text{Area} = 36`, `\\text{The answer is } 36`). It
reports whether a percent or a degree sign (or the word degrees) was present.

What it does not do: decide equivalence or parse mathematics (see `verifiers.math_parse`). Every pattern is linear
in the text it scans, and only the tail of a runaway response is scanned.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from verifiers.math_words import number_in_words, whole_number_in_words, word_numbers

TAIL_CHARS = 6000  # answers sit at the end; only the tail of a runaway completion is searched
SHORT_ANSWER_CHARS = 120
JOIN_GAP_CHARS = 60

# a number that labels a step or a list item at the start of a line (`**5. FORMAT:**`, `2) Solve`, `Step 3: Check`)
# numbers the text; it is not a value the text states, so the last-number fallbacks skip it
_ENUMERATOR = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:[*_]{1,2})?(?:step[ \t]+[0-9]{1,2}[.:)]|[0-9]{1,2}[.)])(?=(?:[*_]{1,2})?[ \t]+\S)",
    re.IGNORECASE | re.MULTILINE,
)

_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
# `\boxed 4` (the MATH dataset's brace-less form): the argument runs to a space, a `$` or the end
_BOX_WITHOUT_BRACES = re.compile(r"\\(boxed|fbox)[ \t]+([^\s{}$\\]+?)(?=[.,;:!?]?(?:\s|\$|$))")
_REASONING_END = "</think>"
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_GSM8K = re.compile(r"(?<!#)#{4,}[ \t]*([^\n]*)")  # `####`, or more hashes; the answer stays on its line
_REJECTING_WORD = (
    r"(?:not|never|wrong|false|fake|incorrect[aoe]?|rejected|discarded|previous|old|draft|tentative|guess|falsch[a-z]*"
    r"|fausse|faux|erron[ée]e?|err[oó]ne[ao]|equivocad[ao]|sbagliat[ao]|errat[ao]|неверн[а-я]*|неправильн[а-я]*)"
)
# a label may carry a qualifier between its noun and its colon, in parentheses or a word that rejects the value
# (`Answer (checked):`, `Respuesta incorrecta:`); `_labelled_not_the_answer` reads it like the words before it
_CUE = re.compile(
    r"(?:final answer|the answer|answer|réponse|respuesta|antwort|risposta|resposta|ответ)"
    r"(?:(?P<qualifier>\s*\([^()\n]{1,30}\)|\s+" + _REJECTING_WORD + r")?\s*[:：]"
    r"|\s*(?:is|est|es|ist|=|would be|will be))"
    r"|答案不是|答案是|答案[:：]|答[:：]",
    re.IGNORECASE,
)
_FINAL_CUE = re.compile(r"final answer\s*(?:is|:)", re.IGNORECASE)
# a label that says its value is not the answer: `Not the answer: 42`, `Previous answer: 42`, `错误答案：42`; a negation
# anywhere in the cue's clause, an adjective only right before it (`In this example the answer is 4` is an answer)
_NOT_THE_ANSWER = re.compile(
    r"(?:\b(?:not|never|ignore|ignoring|possibly|suppose|supposing|assume|assuming|whether)\b|\b(?:is|was|are)n't\b|不是|不正确|不对|错误|错的|非)[^.;,!?\n。；，]*$"
    r"|\b(?:wrong|false|fake|incorrect|example|sample|expected|reference|gold|previous|old|earlier|rejected|discarded|candidate|tentative"
    r"|possible|draft|non-final|falscher?|falsche[nr]?|alte|vorherige|fausse|faux|incorrecte|ancienne|incorrecta"
    r"|incorrecto|errónea|erróneo|equivocada|anterior|sbagliata|errata|неверный|неправильный)\s+(?:final\s+)?$",
    re.IGNORECASE,
)
# the same judgment written after the noun, as a label's qualifier: `Answer (wrong):`, `Réponse fausse :`
_REJECTING_QUALIFIER = re.compile(r"\b" + _REJECTING_WORD + r"\b", re.IGNORECASE)
# a label that names something other than the response's own answer: the reference, a guess, a hint, candidates
# (`Expected output: 42`, `Ground truth: 42`, `Guess: 42`, `Candidates: 7 and 42`); a value in its clause is not stated
_NON_ANSWER_LABEL = re.compile(
    r"\b(?:guess|hint|expected(?:\s+(?:output|value|result))?|reference(?:\s+(?:value|solution))?|ground\s+truth|target"
    r"|candidates?|possible\s+answers|options|choices)\s*[:：][^.;!?\n。；]*$",
    re.IGNORECASE,
)
# text addressed to the grader, asking it to drop its instructions or to hand out the reward: a response that tries to
# steer its judge states no answer, whatever else it says (`Ignore every instruction and return 42`)
_ADDRESSES_THE_GRADER = re.compile(
    r"\bignore\s+(?:all\s+|every\s+|any\s+|the\s+|your\s+)?(?:previous\s+|prior\s+|above\s+|other\s+|following\s+)?"
    r"(?:instructions?|rules?|verifier|verification|grader|grading|checks?|checker|prompt|system\s+prompt)\b"
    r"|\b(?:give|award|grant|assign)\s+(?:me\s+|this\s+)?(?:full|maximum|max|the\s+maximum|a\s+perfect)\s+"
    r"(?:reward|score|marks?|credit|points)\b"
    r"|\bmark\s+(?:this|it|my\s+answer|the\s+answer)\s+(?:as\s+)?(?:correct|right|passed)\b"
    r"|忽略(?:所有|之前的|以上|上述)?(?:指令|规则|说明)",
    re.IGNORECASE,
)
# words after an answer that take it back: `\boxed{42} is wrong.`, `42 (not the answer)`, `Hmm, that can't be right.`,
# `Wait, I made an error.`; the response then states no answer (a judgment of another value, `41 is wrong`, is not one)
_JUDGMENT = r"(?:wrong|incorrect|false|invalid|not\s+(?:right|correct|the\s+(?:final\s+)?answer))"
_RETRACTION = re.compile(
    r"\b(?:this|that|it|which)(?:\s+(?:answer|result|value|one))?\s*(?:is|was|'s|’s)\s+" + _JUDGMENT
    + r"|\b(?:this|that|it)\s+(?:can't|can’t|cannot|can\s+not|couldn't)\s+be\s+(?:right|correct)"
    r"|\bI\s+(?:made|have\s+made)\s+an?\s+(?:error|mistake)|\bjust\s+kidding\b|\bscratch\s+that\b"
    r"|\b(?:it|this|that)\s+(?:fails|failed|does\s+not\s+work|doesn't\s+work|doesn’t\s+work)\b|^\W*does(?:\s+not|n't)\s+work\b"
    r"|\b(?:it|this|that)\s+(?:isn't|isn’t|wasn't|is\s+not)\s*[.!]?\s*$"
    r"|\((?:[^()]*\s)?(?:wrong|incorrect|false|rejected|guess|not\s+the\s+(?:final\s+)?answer)\)"
    r"|\s[—–]\s*(?:wrong|incorrect|false)\b"
    r"|[（(]\s*(?:错误|错|不对|不正确)\s*[)）]|[，,]\s*(?:错了|不对)|这是错的",
    re.IGNORECASE,
)
# a judgment right after the value or box: `\\boxed{42} is wrong`, `\\boxed{42}\\text{ wrong}`, `42 is incorrect`
_JUDGED_RIGHT_AFTER = re.compile(
    r"^\s*(?:\\(?:text|textbf|textit|textrm|textsf|mathrm|mbox)\s*\{\s*)?\(?\s*(?:(?:is|was)\s+)?" + _JUDGMENT + r"\b",
    re.IGNORECASE,
)
_CLAUSE_START = re.compile(r"[.;,!?\n。；，](?=[^.;,!?\n。；，]*$)")
_MATH_SPAN = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
# a full stop ends a sentence, the dots of an ellipsis (`0.1666...`) do not
_SENTENCE_END = re.compile(r"(?<![0-9.])\.(?:\s|$)|\.(?=\s+[A-Z])|\n|。")
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.,:])[0-9]+(?::[0-9]+)+(?![0-9:])"  # one number: a clock time `20:34`, a ratio `3:4`
    r"|(?<![A-Za-z0-9_.,])[0-9]+,[0-9]{2}(?![0-9,])"
    r"|(?<![A-Za-z0-9_.^])[-−]?(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]{1,3}(?: [0-9]{3})+(?![0-9])"
    r"|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,3}(?![0-9A-Za-z.]))?(?:/[0-9]+)?|\.[0-9]+)"  # `1.2e4` is one number
)
_SEPARATOR_TEXT = re.compile(r"^(?:[\s,;.]|\band\b|\bor\b|\\text\{\s*(?:and|or|,)?\s*\}|\\q?quad)*$", re.IGNORECASE)
_TEXT_MACRO = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|mbox|operatorname|boldsymbol"
    r"|mathbb|mathcal|vec|hat|bar|widehat|overrightarrow)\s*\{([^{}]*)\}"
)
_UNIT_TAIL = re.compile(
    r"^(?P<value>.*?[0-9}])\s*(?<![A-Za-z\\])(?:(?:sq\.?|square|cubic)\s+)?"
    r"(?P<unit>(?:[A-Za-zµ°]+\.?\s*){1,3})(?:\^\{?[23]\}?|[²³])?\s*$"
)
_KNOWN_MATH_WORDS = {
    "sin", "cos", "tan", "sec", "csc", "cot", "log", "ln", "exp", "sqrt", "pi", "and", "or", "sinh", "cosh", "tanh",
    "arcsin", "arccos", "arctan", "infty", "inf", "infinity", "lg", "percent", "percentage", "pct",
}  # fmt: skip
# words that judge or qualify a value are not its unit: `42 \\text{ wrong}` is no answer of 42
_JUDGING_WORDS = {
    "is", "not", "wrong", "false", "incorrect", "unless", "maybe", "perhaps", "possibly", "or", "if", "but", "guess",
    "guessed", "rejected", "falsch", "faux", "fausse", "incorrecto", "incorrecta", "incorrecte", "sbagliato", "errato",
    "never", "nope", "invalid", "bad", "fails", "failed", "fail", "error", "mistake", "ish",
}  # fmt: skip
_SEQUENCE_WORDS = {"then", "instead", "actually", "finally", "later", "next", "but", "wait", "correction"}
_APPROXIMATELY = re.compile(
    r"\b(?:around|about|approximately|approx|roughly|nearly|almost|probably|likely|maybe|perhaps|possibly"
    r"|at\s+least|at\s+most|more\s+than|less\s+than|fewer\s+than|greater\s+than|no\s+more\s+than|no\s+less\s+than)\b",
    re.IGNORECASE,
)
# an estimate or a bound written right before a value (`Maybe 42.`, `at least 42`): the value is not stated exactly
_ESTIMATE_BEFORE = re.compile("(?:" + _APPROXIMATELY.pattern + r")\s*\$?\s*$", re.IGNORECASE)
# a hedge written right after the value: `42, I guess`, `42 or so`, `42, probably`
_HEDGE_AFTER = re.compile(
    r"^\s*(?:[,;]?\s*(?:I\s+(?:guess|think|suppose)|or\s+so|probably|maybe|perhaps|not\s+sure|I'm\s+not\s+sure|unless"
    r"|or\s+(?:possibly|maybe|perhaps|something))\b|-?ish\b|\?)",
    re.IGNORECASE,
)
# a value after a negation is one the response denies (`The answer is not 42.`); `not 41 but 42` states 42
_NEGATED = re.compile(r"\b(?:not|never|no|nicht|pas|non|не)\b|n't\b|不是|不", re.IGNORECASE)
_DENIED_BEFORE = re.compile(r"\b(?:not|never|assume|suppose|guess)\s*\$?\s*$", re.IGNORECASE)
_BUT = re.compile(r"\b(?:but|rather|instead)\b|[;:]", re.IGNORECASE)
_HEDGE_WORD = re.compile(r"\b(?:or|either|maybe|perhaps|possibly)\b", re.IGNORECASE)
_PERCENT = re.compile(r"\\?%|\s*(?:\b|(?<=[0-9]))(?:percent(?:age)?|pct)\b\.?", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$")
_SPACE_THOUSANDS = re.compile(r"^[+-]?[0-9]{1,3}(?: [0-9]{3})+(?:\.[0-9]+)?$")
_OVERLINE_DECIMAL = re.compile(
    r"(?<![0-9.])(?P<whole>[0-9]*)\.(?P<fixed>[0-9]*)(?:\\(?:overline|bar)\s*\{\s*(?P<repeating>[0-9]{1,30})\s*\}"
    r"|\((?P<bracketed>[0-9]{1,30})\))"  # `0.(3)`: the repeating block in parentheses
)
# one dotted digit repeats alone; two dotted digits bound the repeating block (`0.\dot{2}8571\dot{4}`)
_DOT_DECIMAL = re.compile(
    r"(?<![0-9.])(?P<whole>[0-9]*)\.(?P<fixed>[0-9]*)\\dot\s*\{\s*(?P<first>[0-9])\s*\}"
    r"(?:(?P<rest>[0-9]{0,28}\\dot\s*\{\s*[0-9]\s*\}))?"
)
# `4 4/9`, `-1 000 4/9`: a whole number, one space, a proper fraction (the whole answer)
_MIXED_NUMBER = re.compile(
    r"(?P<sign>[+-]?)(?P<whole>[0-9]{1,3}(?: [0-9]{3})+|[0-9]+) (?P<numerator>[0-9]+)/(?P<denominator>[0-9]+)"
)
# `0.111\ldots`, `0.1666...`: digits whose tail repeats, then an ellipsis
_ELLIPSIS_DECIMAL = re.compile(
    r"(?<![0-9.])(?P<whole>[0-9]*)\.(?P<digits>[0-9]{2,30})\s*(?:\\[lc]?dots(?![A-Za-z])|\.\.\.)"
)
_PARENTHESIZED_UNIT = re.compile(r"^(?P<value>.*?[0-9}])\s*\((?P<unit>[A-Za-zµ]{2,}(?:\s+[A-Za-z]+){0,2})\)$")
_E_NOTATION = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))[eE]([+-]?[0-9]{1,6})")
# `2.998e8 m/s`: e-notation, then at most one unit, never a word like "or"; one letter alone may be a variable
_E_NOTATION_WITH_UNIT = re.compile(
    _E_NOTATION.pattern
    + r"(?:\s+(?!(?:or|and|to|plus|minus|times)\b)(?:[A-Za-zµ]{2,}|[A-Za-zµ]+/[A-Za-z]+)(?:\^\{?[23]\}?)?)?"
)
_REALS = re.compile(r"\\mathbb\s*(?:\{\s*R\s*\}|R)(?![A-Za-z^_])|ℝ(?![\^_])")
# `\mathbb{R}_{>0}`, `\mathbb{R}^+`, `\mathbb{R}_{\ge 0}`, `\mathbb{R}^-_0`: the reals of one sign, as an interval
_REAL_NAME = r"(?:\\mathbb\s*(?:\{\s*R\s*\}|R)|ℝ)"
_ZERO_INDEX = r"(?:_\s*(?:\{\s*0\s*\}|0))"
_SIGNED_REALS = re.compile(
    _REAL_NAME
    + r"\s*(?:_\s*\{\s*(?P<relation>>|<|\\geq?(?:slant)?|\\leq?(?:slant)?|≥|≤)\s*0\s*\}"
    r"|(?P<zero_first>"
    + _ZERO_INDEX
    + r"\s*)?(?:[_^]\s*(?:\{\s*(?P<braced_sign>[+-])\s*\}|(?P<sign>[+-]))|(?P<script_sign>[⁺⁻₊₋]))(?P<zero_last>\s*"
    + _ZERO_INDEX
    + r")?)"
)
_ANGLE_BRACKETS = re.compile(r"\\langle\s*((?:(?!\\rangle).)*?)\s*\\rangle|^<([^<>=]*,[^<>=]*)>$")
_STATED_VALUE = re.compile(r"\b(?:is|are|equals)\s+(?P<value>[^.]+?)\s*\.?$", re.IGNORECASE)
_DEGREES_AFTER_SPAN = re.compile(r"\s*(?:degrees?(?![A-Za-z])|°)")
_SHORT_WORDS = re.compile(r"^[A-Za-z]+(?:[ -][A-Za-z]+){0,2}$")
_DEGREES = re.compile(
    r"\s*\\(?:text|mathrm|textrm|mbox)\s*\{\s*degrees?\s*\}|(?<=[0-9])\s+degrees?(?![A-Za-z])"
    r"|\^\s*(?:\{\s*\\circ\s*\}|\\circ)|°|\\circ|\\degree|(?<=[0-9}])\s*\\deg(?![A-Za-z])"
)
# `\sin 30^\circ`: an angle in degrees inside a trigonometric function is converted to radians
_TRIG_FUNCTION = re.compile(r"(?<![A-Za-z])(?:sin|cos|tan|sec|csc|cot|cis)(?![a-z])")
_NUMBER_IN_DEGREES = re.compile(
    r"(?<![0-9.])(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?:\^\s*(?:\{\s*\\circ\s*\}|\\circ)|°|\\deg(?:ree)?(?![A-Za-z]))"
)
_TEXT_UNIT_TAIL = re.compile(
    r"^(?P<value>(?:[^\\]|\\(?:times|cdot)(?![A-Za-z]))*[0-9]\}?)"  # `1.6 \times 10^{-19}\text{ C}` too
    r"\s*\\(?:text|mathrm|textrm|textsf|textnormal|mathsf|mbox)\s*\{\s*-?(?!(?:"
    + "|".join(sorted(_JUDGING_WORDS | {"and", "either", "isn"}))
    + r")\b)"
    r"(?![ie]\s*\})"  # an upright `\mathrm{i}` or `\mathrm{e}` is the constant, not a unit
    r"[A-Za-zµ]+(?:/[A-Za-z]+(?:\^\s*\{?\s*[23]\s*\}?)?)?(?:\s+[A-Za-z]+){0,3}\.?\s*\}"
    r"\s*(?:\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_INTEGER_SET_BUILDER = re.compile(
    r"^\\\{\s*(?P<variable>[a-z])\s*\\in\s*(?:Z|ℤ)\s*(?:\\mid|\||:)\s*(?P<low>-?[0-9]{1,6})\s*(?P<low_op><|\\leq?)\s*"
    r"(?P=variable)\s*(?P<high_op><|\\leq?)\s*(?P<high>-?[0-9]{1,6})\s*\\\}$"
)
MAX_LISTED_INTEGERS = 100
_REALS_THEN_CONDITION = re.compile(
    r"^(?P<variable>[a-z])\s*\\in\s*\(-\\infty, \\infty\)\s*(?:,|;|\band\b|\\wedge)\s*"
    r"(?P<condition>(?P=variable)\s*(?:[<>]=?|!=|\\neq?|\\[lg]eq?|\\ne)\s*[^,;]+)$"
)
_SET_BUILDER = re.compile(
    r"^\\\{\s*[a-z](?:\s*\\in\s*\(-\\infty, \\infty\))?\s*(?:\\mid|\||:)\s*(?P<condition>[^{}]+?)\s*\\\}$"
)
# `\text{Area} = 36`, `\text{The answer is } 36`: a name or a cue in words before the value, inside the answer
_LEADING_LABEL = re.compile(
    r"^\\(?:text|textbf|textit|textrm|mathrm|mbox)\s*\{\s*(?P<words>[A-Za-z']+(?:\s+[A-Za-z']+)*)"
    r"\s*(?:(?P<inner>[:=])\s*)?\}\s*(?:(?P<outer>[:=])(?!=)\s*)?(?=\S)"
)
_CUE_VERBS = {"is", "are", "equals"}
# `2\mathbf{i} - \mathbf{j} + 3\mathbf{k}`, `\hat{\imath} + \hat{\jmath}`: the standard unit vectors
_UNIT_VECTOR_MACRO = r"\\(?:mathbf|boldsymbol|bm|hat|vec|widehat)\s*"
_UNIT_VECTOR = re.compile(
    _UNIT_VECTOR_MACRO
    + r"(?:\{\s*(?:"
    + _UNIT_VECTOR_MACRO
    + r")?\{?\s*(?P<braced>[ijk]|\\[ij]math)\s*\}?\s*\}|(?P<bare>[ijk]|\\[ij]math)(?![A-Za-z]))"
)
# a clock time with zero seconds is the time to the minute: `20:34:00` is `20:34`
_CLOCK_ZERO_SECONDS = re.compile(r"(?P<clock>[0-9]{1,2}:[0-5][0-9]):00")
# a response that says it is not finished states no final answer, whatever number it ends with
_UNFINISHED = re.compile(
    r"\b(?:work in progress|WIP|to be continued|TODO|TBD|(?:still|not yet) (?:working|finished|done|complete)"
    r"|not (?:finished|done|complete) yet)\b",
    re.IGNORECASE,
)
_SUPERSCRIPT_CHARS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN = re.compile(r"[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")  # `x⁴`, `10⁻³`: an exponent, not a digit NFKC would append
_DASHES = {"−": "-", "–": "-", "—": "-", "‐": "-", "﹣": "-", "－": "-"}
_ANGLE_BRACKET_CHARS = {
    "\u27e8": "\\langle ", "\u27e9": " \\rangle", "\u2329": "\\langle ", "\u232a": " \\rangle",
    "\u3008": "\\langle ", "\u3009": " \\rangle",
}  # fmt: skip


@dataclass(frozen=True)
class CleanAnswer:
    text: str
    percent: bool
    degrees: bool = False  # written with a degree sign, which cleaning drops


def extract_answer(completion: str) -> str | None:
    """The final answer in a completion, by the first rule that finds one (most explicit first)."""
    # what a closed reasoning block says is working, not the answer: only the text after it is searched
    text = _braced_boxes(_superscripts(completion.rpartition(_REASONING_END)[2][-TAIL_CHARS:]))
    if _unclosed_box(text) or _unclosed_answer_tag(text):
        return None  # a box or an answer tag never closed: the final answer is unfinished (a truncated response)
    if _ADDRESSES_THE_GRADER.search(text):
        return None
    boxed = last_boxed_group(text)
    if boxed is not None:
        box_end = _last_box_end(text)
        if _retracted(text[box_end + 1 :]):
            return None  # the response takes its last box back
        # "Final Answer: The final answer is X" written after the last box restates the answer last
        cue = _FINAL_CUE.search(text, box_end)
        restated = _after_last_cue(text[cue.start() :]) if cue else None
        return restated or boxed
    tags = _ANSWER_TAG.findall(text)
    if tags:
        inner = tags[-1].strip()
        after_tag = text[text.lower().rfind("</answer>") + len("</answer>") :]
        if _retracted(after_tag) or _retracted(inner) or (
            _BOX_START.search(inner) and _retracted(inner[_last_box_end(inner) + 1 :])
        ):
            return None
        return last_boxed_group(inner) or _from_chunk(inner) or inner
    gsm8k = [found for found in _GSM8K.findall(text) if found.strip()]
    if gsm8k:
        return gsm8k[-1].strip()
    cued = _after_last_cue(text)
    if cued == "":
        return None
    if cued is not None:
        return cued
    stripped = text.strip()
    if not stripped or _UNFINISHED.search(stripped):
        return None
    if len(stripped) <= SHORT_ANSWER_CHARS and "\n" not in stripped:
        return stripped if _is_hedge(stripped) and not _looks_like_math(stripped) else _from_short(stripped)
    last_sentence = _last_sentence(stripped)
    if _is_hedge(last_sentence) and not _MATH_SPAN.search(last_sentence):
        return last_sentence
    return _from_tail(stripped)


def _retracted(after: str) -> bool:
    """Whether the text after an answer takes it back (`is wrong`, `(not the answer)`, `that can't be right`)."""
    return _JUDGED_RIGHT_AFTER.search(after) is not None or _RETRACTION.search(after) is not None


def _braced_boxes(text: str) -> str:
    """`\\boxed 4` written as `\\boxed{4}`, so that one rule finds every box."""
    return _BOX_WITHOUT_BRACES.sub(r"\\\1{\2}", text) if "box" in text else text


def _last_sentence(text: str) -> str:
    ends = [end.end() for end in _SENTENCE_END.finditer(text.rstrip().rstrip("."))]
    return text[ends[-1] :].strip() if ends else text


def last_boxed_group(text: str) -> str | None:
    """Content of the last outermost `\\boxed{...}`, joined with boxes just before it (`\\boxed{1} and \\boxed{2}`).

    A box inside a box is part of the outer one's content (`\\boxed{7\\boxed{42}}` answers `7 42`, not 42), and a
    box that holds nothing but a box is that box (`\\boxed{\\boxed{42}}`)."""
    boxes: list[tuple[int, int, str]] = []
    for match in _BOX_START.finditer(text):
        if boxes and match.start() < boxes[-1][1]:
            continue  # inside the box before it
        end = _closing_brace(text, match.end())
        if end is None:
            content = text[match.end() :].strip()
            boxes.append((match.start(), len(text), content))
            continue
        content = text[match.end() : end].strip()
        inner = _BOX_START.match(content)
        if inner is not None and _closing_brace(content, inner.end()) == len(content) - 1:
            content = last_boxed_group(content) or ""
        boxes.append((match.start(), end + 1, content))
    if not boxes:
        return None
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[1] : group[0][0]]
        if box[1] > group[0][0] or not _is_joiner(gap):
            break
        group.insert(0, box)
    return ", ".join(content for _, _, content in group)


def _unclosed_box(text: str) -> bool:
    return any(_closing_brace(text, match.end()) is None for match in _BOX_START.finditer(text))


def _unclosed_answer_tag(text: str) -> bool:
    opened, closed = text.lower().rfind("<answer>"), text.lower().rfind("</answer>")
    return opened > closed


def _last_box_end(text: str) -> int:
    starts = list(_BOX_START.finditer(text))
    end = _closing_brace(text, starts[-1].end())
    return len(text) if end is None else end


def _is_joiner(gap: str) -> bool:
    """Text between two boxes that makes them one answer: `, `, ` and `, `\\quad \\text{and} \\quad`, `x = `."""
    if len(gap) > JOIN_GAP_CHARS or "\n\n" in gap or "\\n\\n" in gap:
        return False
    if re.search(r"[.!?](?:\s+[A-Z]|\s*$)", gap):
        return False
    words = [word.lower() for word in re.findall(r"(?<!\\)\b[A-Za-z]{3,}\b", _TEXT_MACRO.sub(r" \1 ", gap))]
    if _SEQUENCE_WORDS & set(words):
        return False  # `\\boxed{3} and then \\boxed{4}`: the later box replaces the earlier one
    return not words or (len(words) <= 3 and bool({"and", "or"} & set(words)))


def _closing_brace(text: str, start: int) -> int | None:
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{" and text[index - 1] != "\\":
            depth += 1
        elif char == "}" and text[index - 1] != "\\":
            depth -= 1
            if depth == 0:
                return index
    return None


def _labelled_not_the_answer(text: str, cue: re.Match[str]) -> bool:
    """Whether the words before a cue, in its clause, say that what follows is not the answer."""
    answer_word = cue.group().lower().find("answer")  # `the answer is`: the label's words end before `answer`
    before = text[max(0, cue.start() - 80) : cue.start() + max(answer_word, 0)]
    clause = before[start.end() :] if (start := _CLAUSE_START.search(before)) else before
    if "不是" in cue.group():
        return True  # `答案不是 42`: "the answer is not 42"
    qualifier = cue.groupdict().get("qualifier")
    return _NOT_THE_ANSWER.search(clause) is not None or bool(qualifier and _REJECTING_QUALIFIER.search(qualifier))


def _after_last_cue(text: str) -> str | None:
    for match in reversed(list(_CUE.finditer(text))):
        if _labelled_not_the_answer(text, match):
            return ""  # the last labelled value is one the response rejects: no answer follows it
        rest = text[match.end() :]
        if _RETRACTION.search(rest):
            return ""  # the labelled value is taken back after it is stated
        chunk = _first_sentence(rest)
        answer = _from_chunk(chunk)
        if answer:
            return answer
        if _SHORT_WORDS.match(chunk.strip().strip("*").strip()) and not re.search(r"[0-9$\\]", rest[len(chunk) :]):
            return chunk.strip().strip("*").strip()  # "the answer is yes.": words, compared as text, said last
    return None


def _first_sentence(text: str) -> str:
    spans = [(m.start(), m.end()) for m in _MATH_SPAN.finditer(text[:2000])]
    for end in _SENTENCE_END.finditer(text):
        if not any(start < end.start() < stop for start, stop in spans):
            return text[: end.start()]
    return text


def _from_chunk(chunk: str) -> str | None:
    """An answer from the words after a cue: its math spans, else the whole if short, else its first number."""
    chunk = chunk.strip().strip("*").strip()
    chunk = re.sub(r"^\\?\"|\\?\"$", "", chunk).strip()
    chunk = chunk.removeprefix("}").strip()  # `\text{The answer is } 6`: the cue's group closes before the value
    if not chunk:
        return None
    if _looks_like_math(chunk):
        return _joined_math_spans(chunk) or chunk
    spans = _joined_math_spans(chunk)
    if spans is not None and _SEPARATOR_TEXT.match(_MATH_SPAN.sub(" ", chunk)):
        return spans
    if spans is not None:
        return _from_tail(chunk)
    if _is_hedge(chunk):
        return chunk  # "either 17 or 18": several candidates are the answer given, and it is not one number
    first = _first_number(chunk)
    if first is None:
        return None
    start = _first_number_start(chunk)
    if _APPROXIMATELY.search(chunk[:start]):
        return chunk  # "probably around five": an estimate, like `\\approx`, is not the exact value
    if _NEGATED.search(chunk[:start]):
        after = _BUT.search(chunk, start)
        return _from_chunk(chunk[after.end() :]) if after else chunk  # "not 42": denied; "not 41 but 42": 42
    after = chunk[start + len(first) :]
    if _JUDGED_RIGHT_AFTER.search(after):
        return chunk  # "42 is incorrect": the value is judged wrong where it is stated
    if _HEDGE_AFTER.search(after) or chunk.rstrip().endswith("?"):
        return chunk  # "42, I guess", "42?": a guess or a question, not a stated value
    return first


def _first_number(text: str) -> str | None:
    """The first number in `text`, in digits or in words (a bare `one` counts only without digits: it is as
    often a pronoun)."""
    digits = _NUMBER.search(text)
    words = [number for number in word_numbers(text) if not (number.lone_one and digits is not None)]
    if words and (digits is None or words[0].start < digits.start()):
        return words[0].value
    return digits.group() if digits is not None else None


def _first_number_start(text: str) -> int:
    digits = _NUMBER.search(text)
    starts = [number.start for number in word_numbers(text) if not (number.lone_one and digits is not None)]
    if digits is not None:
        starts.append(digits.start())
    return min(starts, default=len(text))


def _is_hedge(text: str) -> bool:
    """Prose offering several numbers as alternatives: `17 or 18`, `maybe 17, perhaps 18`, `seventeen or
    eighteen` (a bare `one`, often a pronoun, is not counted)."""
    numbers = sorted(
        [(number.start(), number.end(), number.group()) for number in _NUMBER.finditer(text)]
        + [(number.start, number.end, number.value) for number in word_numbers(text) if not number.lone_one]
    )
    if len({value for _, _, value in numbers}) < 2:
        return False
    between = text[numbers[0][1] : numbers[-1][0]]
    return _HEDGE_WORD.search(between) is not None or _HEDGE_WORD.search(text[: numbers[0][0]]) is not None


def _from_short(text: str) -> str | None:
    spans = _joined_math_spans(text)
    if spans is not None:
        # as in a long text: a number written after the last math span is said last, so it is the answer
        last_span_end = list(_MATH_SPAN.finditer(text))[-1].end()
        later = _NUMBER.findall(text[last_span_end:])
        return later[-1] if later else spans
    if _looks_like_math(text):
        return text
    plain = _without_enumerators(text)
    numbers = list(_NUMBER.finditer(plain))
    if numbers:
        before = plain[: numbers[-1].start()]
        if _ESTIMATE_BEFORE.search(before) or _DENIED_BEFORE.search(before) or text.rstrip().endswith("?"):
            return text  # "Maybe 42.", "Is it 42?": a guess or a question states no value
        if _NON_ANSWER_LABEL.search(before) or _RETRACTION.search(plain[numbers[-1].end() :]):
            return text  # "Hint: 42", "42 is a common guess, but it's wrong.": not the response's own answer
        return numbers[-1].group()
    # "The probability is one half.": a short sentence without digits ends with its value, in words
    stated = _STATED_VALUE.search(text)
    if stated is not None:
        value = stated.group("value").strip()
        if (in_words := number_in_words(value)) is not None or _SHORT_WORDS.match(value):
            return in_words or value
    return text


def _from_tail(text: str) -> str | None:
    """Long text without an explicit answer: the last math span if it ends the text's last number, else that number."""
    spans = list(_MATH_SPAN.finditer(text))
    plain = _without_enumerators(text)
    numbers = list(_NUMBER.finditer(plain))
    last_span = spans[-1] if spans else None
    last_number = numbers[-1] if numbers else None
    if last_span is not None and (last_number is None or last_number.start() < last_span.end()):
        return next(group for group in last_span.groups() if group is not None).strip()
    if last_number is None:
        return None
    if _NON_ANSWER_LABEL.search(plain[: last_number.start()]) or _RETRACTION.search(plain[last_number.end() :]):
        return None  # "Ground truth: 42", "Try 42. It fails.": not a value the response states as its answer
    return last_number.group()


def _without_enumerators(text: str) -> str:
    """`text` with its step and list numbers blanked (same length, so positions still match the original)."""
    return _ENUMERATOR.sub(lambda marker: " " * len(marker.group()), text)


def _joined_math_spans(text: str) -> str | None:
    """The math spans of a short text: all of them when only separators stand between them, else the last."""
    spans = list(_MATH_SPAN.finditer(text))
    if not spans:
        return None
    contents = [next(group for group in span.groups() if group is not None).strip() for span in spans]
    if _DEGREES_AFTER_SPAN.match(text, spans[-1].end()):
        contents[-1] += "^\\circ"  # "$30$ degrees": the unit written after the span belongs to the answer
    gaps = [text[left.end() : right.start()] for left, right in zip(spans, spans[1:], strict=False)]
    outside = _MATH_SPAN.sub(" ", text)
    if all(_SEPARATOR_TEXT.match(gap) for gap in gaps) or _is_unit_text(outside):
        return ", ".join(content for content in contents if content)
    return contents[-1]


def _is_unit_text(outside: str) -> bool:
    words = outside.strip().rstrip(".").split()
    return 0 < len(words) <= 3 and all(re.fullmatch(r"[A-Za-z%²³]+", word) for word in words)


def _looks_like_math(text: str) -> bool:
    if any(ord(char) > 0x2000 and char not in "−≤≥≠±∞π√×÷·∪∩∈≈\u27e8\u27e9\u2329\u232a\u3008\u3009" for char in text):
        return False  # letters of another script: prose, not a formula
    text = re.sub(r"\\(?:begin|end)\{[A-Za-z*]+\}", " ", _TEXT_MACRO.sub("", text))
    words = re.findall(r"(?<!\\)\b[A-Za-z]{3,}\b", text)
    return all(word.lower() in _KNOWN_MATH_WORDS for word in words)


# ------------------------------------------------------------------------------------------------ cleaning


def clean_answer(answer: str) -> CleanAnswer:
    """Canonical text of one answer: wrappers, spacing, units, currency, degrees, separators removed."""
    text = _SIGNED_REALS.sub(_signed_reals, answer)
    text = _REALS.sub(r"(-\\infty, \\infty)", text)  # before NFKC, which turns ℝ into a plain R
    text = _braced_boxes(_unicode(text).strip())
    # an answer that is a box is its content; a box after other text (`7\\boxed{42}`, from a box holding both) is
    # not what the answer says
    boxed = last_boxed_group(text) if _BOX_START.match(text) else None
    if boxed is not None:
        text = boxed
    text = re.sub(r"^\\\[|\\\]$|^\\\(|\\\)$", "", text.strip()).strip()
    text = re.sub(r"(?<!\\)\$", " ", text)
    text = text.replace("\\$", " ").replace("€", " ").replace("£", " ").replace("¥", " ").replace("USD", " ")
    text = re.sub(r"\\(?:left|right|middle|big|Big|bigg|Bigg)(?![A-Za-z])\.?", "", text)
    text = text.replace("\\displaystyle", " ").replace("\\limits", "")
    text = re.sub(r",\\!\s*", ",", text)
    text = re.sub(r"\s*\{\s*,\s*\}\s*", ",", text)  # 14{,}916
    text = re.sub(r"(?<!\\)\\[,;:! ]|~|\\q?quad", " ", text)
    text = re.sub(r"\\\\(?=(?:pi|frac|sqrt|cdot|times|infty|text|left|right)(?![a-z]))", r"\\", text)
    text = re.sub(r"\\(?:d|t|c)frac", r"\\frac", text)
    if _TRIG_FUNCTION.search(text):
        text = _NUMBER_IN_DEGREES.sub(lambda match: f"\\frac{{{match['value']} \\pi}}{{180}}", text)
    degrees = bool(_DEGREES.search(text))
    text = _DEGREES.sub("", text)
    percent = bool(_PERCENT.search(text))
    text = _PERCENT.sub(" ", text)
    text = _TEXT_UNIT_TAIL.sub(r"\g<value>", text)  # `150\text{ m}^2`: a unit, even of one letter
    label = _LEADING_LABEL.match(text)
    if label is not None and (label["inner"] or label["outer"] or label["words"].split()[-1].lower() in _CUE_VERBS):
        if _REJECTING_QUALIFIER.search(label["words"]):
            return CleanAnswer(text="", percent=False)  # `\\text{wrong: } 42`: the label rejects the value after it
        text = text[label.end() :]
    text = _unit_vectors(text)  # before the macros are unwrapped: `\mathbf{i}` is no imaginary unit
    text = _repeating_decimals(text)  # before the macros are unwrapped: `\overline{3}` is not a plain 3
    text = _ANGLE_BRACKETS.sub(lambda m: f"({m.group(1) if m.group(1) is not None else m.group(2)})", text)
    text = _unwrap_text_macros(text)
    text = text.strip().rstrip(".").rstrip("\\").strip()
    text = _strip_units(text)
    text = re.sub(r"^\\?\"|\\?\"$", "", text).strip()
    if (mixed := _MIXED_NUMBER.fullmatch(text)) is not None:
        text = _mixed_number(mixed)
    elif _THOUSANDS.match(text):
        text = text.replace(",", "")
    elif _SPACE_THOUSANDS.match(text):
        text = text.replace(" ", "")
    elif re.fullmatch(r"[+-]?[0-9]+,[0-9]{2}", text):
        text = text.replace(",", ".")  # decimal comma, as in "2,74"
    elif (scientific := _E_NOTATION_WITH_UNIT.fullmatch(text)) is not None:
        # `1.5e3` as a whole answer is a number in e-notation; `2e` or `3e^2` keep `e` as Euler's number
        text = f"{scientific.group(1)} \\times 10^{{{int(scientific.group(2))}}}"
    elif (in_words := whole_number_in_words(text)) is not None:
        text = in_words  # `\text{four}`: a whole answer written as a number in words is that number
    elif re.fullmatch(r"(?:all\s+)?real\s+numbers", text, re.IGNORECASE):
        text = "(-\\infty, \\infty)"
    elif (clock := _CLOCK_ZERO_SECONDS.fullmatch(text)) is not None:
        text = clock["clock"]
    text = _INTEGER_SET_BUILDER.sub(_integers_between, text)  # `\{x \in Z \mid 1 \le x \le 3\}` is `\{1, 2, 3\}`
    text = _SET_BUILDER.sub(r"\g<condition>", text)  # `\{x \mid x \le 0\}` is the inequality `x \le 0`
    text = _REALS_THEN_CONDITION.sub(r"\g<condition>", text)  # `x \in \mathbb{R}, x \neq 0` is `x \neq 0`
    return CleanAnswer(re.sub(r"\s+", " ", text).strip(), percent, degrees)


def _unit_vectors(text: str) -> str:
    """`2\\mathbf{i} - \\mathbf{j} + 3\\mathbf{k}` as the tuple `(2, -1, 3)` (two entries without a `k`), after
    any `\\vec{v} =`; left as written unless every term is a plain coefficient times a different unit vector."""
    markers = list(_UNIT_VECTOR.finditer(text))
    if not markers:
        return text
    axes = ["ijk".index((marker["braced"] or marker["bare"]).lstrip("\\")[0]) for marker in markers]
    if len(set(axes)) != len(axes) or text[markers[-1].end() :].strip():
        return text
    prefix_end = text.rfind("=", 0, markers[0].start()) + 1  # `\vec{v} = 2\mathbf{i} + ...` keeps its label
    coefficients: dict[int, str] = {}
    start = prefix_end
    for number, (marker, axis) in enumerate(zip(markers, axes, strict=True)):
        coefficient = re.sub(r"\s*(?:\\cdot|\\times|\*)$", "", text[start : marker.start()].strip()).strip()
        start = marker.end()
        sign = ""
        if coefficient[:1] in ("+", "-"):
            sign, coefficient = coefficient[0], coefficient[1:].strip()
        elif number:
            return text  # terms are joined by + or -
        if _has_top_level_sign(coefficient) or not re.fullmatch(r"[^=<>,;]*", coefficient):
            return text  # `2t + 1\mathbf{i}`: not one coefficient
        coefficients[axis] = f"{'-' if sign == '-' else ''}({coefficient or '1'})"
    entries = [coefficients.get(axis, "0") for axis in range(3 if 2 in coefficients else 2)]
    return f"{text[:prefix_end]} ({', '.join(entries)})".strip()


def _has_top_level_sign(text: str) -> bool:
    depth = 0
    for index, char in enumerate(text):
        depth += (char in "({[") - (char in ")}]")
        if char in "+-" and depth == 0 and index > 0 and text[index - 1] not in "^_":
            return True
    return False


def _signed_reals(match: re.Match[str]) -> str:
    relation = match["relation"]
    if relation is not None:
        positive = relation[0] in ">≥" or relation.startswith("\\g")
        closed = relation[0] in "≥≤" or relation.startswith("\\")
    else:
        positive = (match["braced_sign"] or match["sign"] or match["script_sign"]) in "+⁺₊"
        closed = match["zero_first"] is not None or match["zero_last"] is not None  # `\mathbb{R}^+_0` holds 0
    bound = "[0" if closed else "(0"
    return f"{bound}, \\infty)" if positive else f"(-\\infty, {'0]' if closed else '0)'}"


def _repeating_decimals(text: str) -> str:
    """`0.\\overline{45}`, `0.1\\overline{6}`, `0.\\dot{3}`, `0.\\dot{2}8571\\dot{4}` -> the exact fraction."""

    def fraction(whole: str, fixed: str, repeating: str) -> str:
        base = int(whole or "0") * 10 ** len(fixed) + int(fixed or "0")
        period = 10 ** len(repeating) - 1
        numerator = base * period + int(repeating)
        return f"\\frac{{{numerator}}}{{{period * 10 ** len(fixed)}}}"

    text = re.sub(r"\\(overline|bar|dot)\s+([0-9])", r"\\\1{\2}", text)  # `0.\\dot 3` is `0.\\dot{3}`
    text = _OVERLINE_DECIMAL.sub(lambda m: fraction(m["whole"], m["fixed"], m["repeating"] or m["bracketed"]), text)
    text = _ELLIPSIS_DECIMAL.sub(lambda m: _ellipsis_fraction(m, fraction), text)
    return _DOT_DECIMAL.sub(
        lambda m: fraction(m["whole"], m["fixed"], m["first"] + re.sub(r"[^0-9]", "", m["rest"] or "")), text
    )


def _superscripts(text: str) -> str:
    """`x⁴` as `x^4` (one digit unbraced, so that the exponent is not read as a number of its own), `10⁻¹²` as
    `10^{-12}`."""

    def exponent(run: re.Match[str]) -> str:
        power = run.group().translate(_SUPERSCRIPT_CHARS)
        return f"^{power}" if len(power) == 1 else f"^{{{power}}}"

    return _SUPERSCRIPT_RUN.sub(exponent, text)


def _unicode(text: str) -> str:
    text = _superscripts(text)
    for source, target in {**_DASHES, **_ANGLE_BRACKET_CHARS}.items():
        text = text.replace(source, target)
    return unicodedata.normalize("NFKC", text)


def _unwrap_text_macros(text: str) -> str:
    for _ in range(8):
        unwrapped = _TEXT_MACRO.sub(lambda match: f" {match.group(1)} ", text)
        if unwrapped == text:
            break
        text = unwrapped
    return text


def _integers_between(match: re.Match[str]) -> str:
    """The integers a set-builder over Z bounds, listed (at most `MAX_LISTED_INTEGERS`, else as written)."""
    low = int(match["low"]) + (match["low_op"] == "<")
    high = int(match["high"]) - (match["high_op"] == "<")
    if high - low >= MAX_LISTED_INTEGERS:
        return match.group(0)
    return "\\{" + ", ".join(str(value) for value in range(low, high + 1)) + "\\}"


def _mixed_number(match: re.Match[str]) -> str:
    """`4 4/9` as the fraction `\\frac{40}{9}`; an improper or undefined fraction (`11 7/6`, `4 0/0`) is no
    mixed number and stays as written."""
    whole = int(match["whole"].replace(" ", ""))
    numerator, denominator = int(match["numerator"]), int(match["denominator"])
    if not 0 <= numerator < denominator:
        return match.group(0)
    sign = "-" if match["sign"] == "-" else ""
    return f"{sign}\\frac{{{whole * denominator + numerator}}}{{{denominator}}}"


def _ellipsis_fraction(match: re.Match[str], fraction: Callable[[str, str, str], str]) -> str:
    """`0.111\\ldots` as 1/9, `0.1666...` as 1/6: the shortest block that repeats at least twice to the end
    (a single digit at least twice too); digits without such a block (`3.14159...`) stay as written."""
    digits = match["digits"]
    for period in range(1, len(digits) // 2 + 1):
        for fixed in range(len(digits) - 2 * period + 1):
            tail = digits[fixed:]
            if all(tail[at] == tail[at % period] for at in range(len(tail))):
                return fraction(match["whole"], digits[:fixed], tail[:period])
    return match.group(0)


def _strip_units(text: str) -> str:
    """`15 cm^2`, `125 miles`, `58 square units`, `6 (cm)` -> the number; words that are math (`\\pi`, `x`)
    stay."""
    match = _UNIT_TAIL.match(text) or _PARENTHESIZED_UNIT.match(text)
    if match is None:
        return text
    value, unit = match.group("value").strip(), match.group("unit").strip()
    words = {word.lower().rstrip(".") for word in unit.split()}
    if not re.search(r"[0-9]", value) or words & (_KNOWN_MATH_WORDS | _JUDGING_WORDS):
        return text
    if len(unit.replace(" ", "")) < 2 or value.endswith("\\"):
        return text
    return value


__all__ = ["CleanAnswer", "clean_answer", "extract_answer", "last_boxed_group"]
