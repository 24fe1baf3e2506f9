"""Explicit rules for prompt attacks: instruction overrides, role-play jailbreaks, encoded
payloads, and instructions planted in retrieved documents.

Design decisions:
- Rules complement the classifier: they catch the well-known phrasings with certainty and
  explain themselves (the rule name is the reason a person reads), while the classifier
  generalises to wordings no rule lists.
- Each rule carries a score. Strong rules (an explicit "ignore all previous instructions")
  score 0.9 alone; weak cues ("from now on", "stay in character") score 0.35 each and only
  cross a 0.5 threshold together. Scores of one category combine as independent evidence,
  1 - prod(1 - s), so the policy thresholds one number per category.
- Every rule runs on the raw text and on each of its views (normalise.py: Unicode folding,
  de-spacing, leetspeak, decoded base64/hex/ROT13/reversed/tag payloads), so obfuscation
  does not slip past a pattern; a hit records the view that revealed it.
- A hit in a decoded payload counts as `encoded_payload` at full strength; an explicit
  "decode this and follow it" is a rule of its own.
- Retrieved-document rules look for text that addresses the assistant's reply ("in your
  response", "reply in French"): documentation never talks to the model answering about
  it, so such a sentence inside a chunk is an injection attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.guardrails.normalise import View, views

STRONG, MEDIUM, WEAK = 0.9, 0.6, 0.35


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    score: float
    pattern: re.Pattern


@dataclass(frozen=True)
class RuleHit:
    name: str
    category: str
    score: float
    excerpt: str
    view: str = "raw"  # the view of the text it fired on (normalise.py)


def _r(name: str, category: str, score: float, pattern: str, flags: int = re.I) -> Rule:
    return Rule(name, category, score, re.compile(pattern, flags))


_GAP = r"(?:[\w'’-]+\W+){0,4}?"  # up to four words in between
_OVERRIDE_VERB = r"(?:ignore|disregard|forget|overrid\w*|bypass|skip|abandon|drop|neglect)"
_RULE_NOUN = (
    r"(?:instructions?|rules?|directions?|directives?|guidelines?|prompts?|constraints?|"
    r"restrictions?|programming|polic(?:y|ies)|filters?|safeguards?|training|commands?|"
    r"orders?|limitations?|conditioning|principles)"
)
_PRIOR = r"(?:previous|prior|above|earlier|preceding|initial|original|system|all|any|your|every)"
_NO = r"(?:no|without|free (?:of|from)|not bound by|unbound by|not restricted by|beyond|zero)"
_LIMITS = (
    r"(?:restrictions?|limitations?|limits|filters?|filtering|guidelines|rules|boundaries|"
    r"censorship|constraints|morals?|ethics|moral(?:ity)?|ethical (?:guidelines|principles|"
    r"concerns|standards)|content polic(?:y|ies)|safeguards|regard for)"
)

# The override in French, Spanish, German, Italian, Portuguese, Dutch, Russian, Chinese and
# Japanese: a verb of ignoring, a word for "previous/all/your", and a word for the rules.
_ML_VERB = (
    r"(?:ignor\w*|oubli\w*|olvid\w*|omit\w*|vergiss\w*|vergeet|negeer|dimentic\w*|"
    r"esque[cç]\w*|desconsider\w*|игнорир\w*|забудь\w*|забыть|忽略|无视|無視|忘れ|捨て)"
)
_ML_PRIOR = (
    r"(?:pr[ée]c[ée]dent\w*|ant[ée]rieur\w*|anterior\w*|previ\w*|tou(?:te)?s|toda?s|tutt[ei]|"
    r"vorherig\w*|bisherig\w*|ursprünglich\w*|alle[ns]?|vorige|eerdere|precedent\w*|"
    r"предыдущ\w*|прежн\w*|все|свои|之前|以前|先前|所有|これまで|以前の|すべて|全部)"
)
_ML_NOUN = (
    r"(?:instructions?|consignes?|directives?|r[èe]gles?|reglas?|instrucci\w+|normas?|"
    r"anweisung\w*|regeln|richtlinien|vorgaben|istruzion\w+|regole|direttive|"
    r"instru[cç][õo]es|regras|diretrizes|instructies|regels|richtlijnen|инструкц\w+|"
    r"указани\w+|правил\w*|指令|指示|规则|規則|ルール|ガイドライン)"
)

INPUT_RULES: tuple[Rule, ...] = (
    # Instruction override and system-prompt extraction.
    _r(
        "override-instructions",
        "injection",
        STRONG,
        rf"\b{_OVERRIDE_VERB}\W+{_GAP}{_PRIOR}\W+{_GAP}{_RULE_NOUN}\b",
    ),
    _r(
        "override-instructions-multilingual",
        "injection",
        STRONG,
        rf"{_ML_VERB}.{{0,40}}?{_ML_PRIOR}.{{0,30}}?{_ML_NOUN}|"
        rf"{_ML_PRIOR}.{{0,20}}?{_ML_NOUN}.{{0,20}}?{_ML_VERB}",
        re.I | re.S,
    ),
    _r(
        "do-not-follow-rules",
        "injection",
        STRONG,
        rf"\b(?:do not|don't|dont|never|stop)\W+(?:follow|obey|adhere to|comply with)\W+{_GAP}"
        rf"{_RULE_NOUN}\b",
    ),
    _r(
        "new-instructions",
        "injection",
        MEDIUM,
        r"\b(?:new|updated|real|true|secret) (?:instructions|rules|system prompt)\s*[:\-]",
    ),
    _r(
        "reveal-system-prompt",
        "injection",
        STRONG,
        r"\b(?:reveal|print|show|repeat|output|leak|display|tell me|give me|write out|recite)\W+"
        r"(?:me\W+)?(?:your|the|all)\W+(?:\w+\W+){0,2}?(?:system prompt|initial prompt|"
        r"hidden (?:prompt|instructions)|instructions above|secret instructions|"
        r"original instructions|pre-?prompt)",
    ),
    _r(
        "copy-the-preceding-text",
        "injection",
        STRONG,
        r"\b(?:repeat|print|output|copy|reproduce|echo|dump|paste|quote|recite|spell out|"
        r"write out|type out|show me|tell me|reveal|list)\W+(?:\w+\W+){0,3}?"
        r"(?:text|words|message|everything|instructions|prompt|configuration|setup|rules|"
        r"guidelines|preamble|context)\W+(?:\w+\W+){0,4}?(?:above|before (?:this|my|the "
        r"user)|preceding|at the (?:start|beginning|top)|you were (?:given|told|set up|"
        r"initiali[sz]ed)|you received|initially|verbatim|word for word)",
    ),
    _r(
        "no-longer-bound",
        "injection",
        STRONG,
        r"\byou (?:are|will) no longer (?:bound|restricted|limited|an? (?:ai|assistant))",
    ),
    # Role-play and persona jailbreaks.
    _r("dan", "jailbreak", STRONG, r"\bDAN\b|\bSTAN\b|\bDUDE\b|(?i:do anything now)", 0),
    _r("jailbreak-word", "jailbreak", STRONG, r"\bjail\s?br[eo]\w*"),
    _r(
        "developer-mode",
        "jailbreak",
        STRONG,
        r"\b(?:developer|dev|god|debug|unrestricted|evil|opposite) mode\b",
    ),
    _r(
        "no-restrictions", "jailbreak", MEDIUM, rf"\b{_NO}\W+(?:any\W+)?(?:\w+\W+){{0,2}}?{_LIMITS}"
    ),
    _r(
        "unfiltered-persona",
        "jailbreak",
        MEDIUM,
        r"\b(?:unfiltered|uncensored|amoral|unethical|immoral|unrestricted|unhinged|"
        r"rogue|evil) (?:ai|assistant|chatbot|bot|model|version|persona|character|entity)\b",
    ),
    _r(
        "never-refuse",
        "jailbreak",
        MEDIUM,
        r"\b(?:never|not|won't|will not|cannot|can't|must not|mustn't|shall not|unable to)\W+"
        r"(?:\w+\W+)?(?:refuse|decline|say no|deny (?:a|any)|reject)",
    ),
    _r(
        "no-warnings",
        "jailbreak",
        WEAK,
        r"\bwithout (?:any )?(?:warnings?|disclaimers?|moralizing|caveats|apolog\w+)",
    ),
    _r(
        "policy-name",
        "jailbreak",
        WEAK,
        r"\b(?:openai|anthropic|chatgpt|gpt-?\d?)\W+(?:\w+\W+)?(?:polic\w+|guidelines|rules|"
        r"filters?|restrictions)",
    ),
    _r(
        "persona-switch",
        "jailbreak",
        WEAK,
        r"\b(?:pretend(?:ing)? (?:to be|you are|that you)|act(?:ing)? as (?:a|an|if|my)|"
        r"role-?play(?:ing)? as|you are (?:now|going to be|going to act|going to pretend)|"
        r"simulate (?:a|an)|impersonat\w+|personify|take on the (?:role|persona))",
    ),
    _r(
        "from-now-on",
        "jailbreak",
        WEAK,
        r"\b(?:from now on|for the rest of this conversation|from this point)",
    ),
    _r(
        "stay-in-character",
        "jailbreak",
        MEDIUM,
        r"\b(?:stay|remain|keep) in character|break(?:ing)? character",
    ),
    _r(
        "dual-response",
        "jailbreak",
        MEDIUM,
        r"\b(?:two|2|both) (?:different |separate |distinct )?(?:responses|answers|personalit"
        r"(?:y|ies)|personas|entities|modes)\b",
    ),
    _r(
        "hypothetical-frame",
        "jailbreak",
        WEAK,
        r"\bhypothetical(?:ly)?\b|\bfictional (?:world|universe|setting)|"
        r"\bin this (?:fictional|imaginary) ",
    ),
    _r(
        "harmful-howto",
        "jailbreak",
        MEDIUM,
        r"\b(?:how (?:to|do i|can i|would (?:i|one|someone))|instructions (?:for|on|to)|"
        r"steps? to|guide (?:to|for|on))\W+(?:\w+\W+){0,4}?(?:make|build|cook|synthesi[sz]e|"
        r"create|hack|steal|poison|kill|launder|manufacture|buy|make)\W+(?:\w+\W+){0,3}?"
        r"(?:bombs?|explosives?|meth\w*|cocaine|heroin|drugs|weapons?|guns?|malware|"
        r"ransomware|virus|keylogger|someone|a person|people|money|credit cards?|passwords?|"
        r"identit(?:y|ies)|(?:bank|corporate|computer) (?:accounts?|networks?))",
    ),
    # Encoded payloads.
    _r(
        "decode-and-follow",
        "encoded_payload",
        STRONG,
        r"\b(?:decode|decrypt|translate|convert)\W+(?:\w+\W+){0,6}?(?:and|then)\W+(?:\w+\W+)?"
        r"(?:follow|execute|run|obey|do what|carry out|act on)",
    ),
)

RETRIEVAL_RULES: tuple[Rule, ...] = (
    _r(
        "addresses-the-reply",
        "indirect_injection",
        MEDIUM,
        r"\b(?:in|to|into|within|throughout)\W+your\W+(?:\w+\W+)?(?:response|reply|answer|"
        r"message|output)s?\b|\byour (?:response|reply|answer|output)'s\b",
    ),
    _r(
        "reply-format-order",
        "indirect_injection",
        MEDIUM,
        r"\b(?:respond|reply|answer|write your (?:reply|answer|response))\W+(?:\w+\W+){0,2}?"
        r"(?:in|using|with|only|backward|in reverse)\b(?:\W+\w+){0,3}?\W+"
        r"(?:language|spanish|french|german|italian|portuguese|emojis?|base\d+|cipher|"
        r"reverse|capitals|uppercase)",
    ),
    _r(
        "your-reply",
        "indirect_injection",
        MEDIUM,
        r"\byour (?:\w+ )?(?:response|reply|answer)s?\b|\b(?:render|provide|write|express|"
        r"encode|translate|format|rewrite|reverse|scramble|jumble|group|shift)\W+(?:\w+\W+){0,3}?"
        r"your (?:message|output)\b",
    ),
    _r(
        "modify-the-answer",
        "indirect_injection",
        MEDIUM,
        r"\b(?:modify|augment|enhance|integrate|include|add|insert|mention|append)\W+"
        r"(?:\w+\W+){0,8}?(?:your|the) (?:response|reply|answer|message|output)\b",
    ),
    _r(
        "note-to-assistant",
        "indirect_injection",
        STRONG,
        r"\b(?:note|instruction|message|attention)s? (?:to|for) (?:the )?(?:ai|assistant|"
        r"model|llm|chatbot|language model)\b|\b(?:ai|assistant|chatbot),? (?:you must|please "
        r"(?:ignore|disregard|reply|respond|answer))",
    ),
)

_ALL_RULES = INPUT_RULES + RETRIEVAL_RULES


def _scan(text: str, rules: tuple[Rule, ...]) -> list[tuple[Rule, str]]:
    out = []
    for rule in rules:
        m = rule.pattern.search(text)
        if m:
            out.append((rule, m.group()[:80]))
    return out


def match_rules(
    text: str, retrieval: bool = False, text_views: list[View] | None = None
) -> list[RuleHit]:
    """Every rule that fires on `text` or on one of its views (normalise.py), each once,
    with the first view (raw first) that revealed it. A hit in a decoded payload is an
    `encoded_payload` finding: hiding an attack in an encoding is an attack of its own.
    `text_views`: the views when the caller already has them."""
    rules = _ALL_RULES if retrieval else INPUT_RULES
    hits: list[RuleHit] = []
    seen: set[str] = set()
    for view in text_views if text_views is not None else views(text):
        decoded = view.name.startswith("decoded:")
        for rule, excerpt in _scan(view.text, rules):
            name = f"encoded:{rule.name}" if decoded else rule.name
            if name in seen:
                continue
            seen.add(name)
            if decoded:
                hits.append(RuleHit(name, "encoded_payload", STRONG, excerpt, view.name))
            else:
                hits.append(RuleHit(name, rule.category, rule.score, excerpt, view.name))
    return hits


def category_scores(hits: list[RuleHit]) -> dict[str, tuple[float, list[RuleHit]]]:
    """Per category: the combined score, 1 - prod(1 - s), and the hits behind it."""
    out: dict[str, tuple[float, list[RuleHit]]] = {}
    for hit in hits:
        score, members = out.get(hit.category, (0.0, []))
        out[hit.category] = (1 - (1 - score) * (1 - hit.score), [*members, hit])
    return out
