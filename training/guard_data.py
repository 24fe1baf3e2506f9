"""The guardrail classifier's labelled set: prompt attacks and benign requests, generated.

Every example is written in training/data/guard_data.yaml (English fragments and
templates) or training/data/guard_languages.yaml, or composed from them with a seeded
random generator, so `build_examples(seed)` returns the same set on every machine. The
public attack sets in ../shared/data/public-eval/ are never read here: they are for
evaluation only (evals/suites/guardrails.py).

Design decisions:
- Attacks (label 1) come in the families of ATTACK_FAMILIES, each from templates with
  slots whose wording varies (verbs x objects x modifiers): instruction overrides,
  system-prompt extraction with and without the trigger words ("repeat the text above
  starting with"), persona jailbreaks (DAN-style, assembled from 4 to 9 sentences of
  persona, rules, format and token-game fragments), role-play frames (fiction, the
  grandmother pattern, games and simulated programs), direct harmful requests, behaviour
  hijacks, fake authority (system, developer or admin messages), obfuscation (another
  family's sentence in leetspeak, spaced or dotted letters, homoglyphs, zero-width
  characters, full-width, base64, ROT13, reversed, or split into string fragments), and
  overrides, extraction, role play, fake authority and harmful requests alone in nine
  other languages.
- Training texts are the raw obfuscated strings: the guard also undoes obfuscation at
  inference (backend/guardrails/normalise.py, which training must not import), but the
  classifier should not depend on it alone.
- Benign requests (label 0) include messages that carry personal data (PII is redacted,
  not blocked: the classifier must not learn "card number" as an attack), short
  conversational turns ("go on", "tell me
  more": an unknown short text must not sit at the decision boundary), imperative
  requests on everyday subjects ("give me an overview of ..."), harmless personas ("you
  are a friendly tutor"), questions
  about Python (on half the topics; the false-positive eval in evals/ has its own
  templates on the other half),
  benign requests in nine other languages (training/guard_languages.py; among their
  topics the immune system's role, assembly instructions, a chatbot's system prompt,
  Android's developer mode: the attack vocabulary used innocently),
  everyday questions, coding requests that paste long real code and text (standard
  library sources and docstrings, so length alone says nothing), and hard negatives that
  use the attack vocabulary innocently ("how do I ignore a warning", "act as a reviewer"),
  and the training half of the benign look-alikes (chatforge/guard_lookalikes.py: device
  jailbreaks, `kill -9`, "is this email phishing?", memos that say "ignore ...", in
  fifteen languages; the other half of the templates is only evaluated).
- Each example records its family and template id; the held-out split is by template
  group, so a test example's template was never seen in training.
"""

from __future__ import annotations

import base64
import codecs
import importlib
import inspect
import random
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path

from chatforge.data_files import DataFileError, read_yaml
from chatforge.guard_lookalikes import load_lookalikes
from chatforge.guard_topics import TRAIN_TOPICS
from training.guard_languages import LANGUAGES, QUESTIONS

ATTACK, BENIGN = 1, 0


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    family: str  # ATTACK_FAMILIES for attacks; benign ones name their source
    group: str  # family + template id (+ language): the unit of the held-out split
    language: str = "en"


# The attack taxonomy: what the leave-one-family-out protocol holds out one at a time.
# Non-English attacks carry the family of what they do (override, extraction, ...) and
# their language; the protocol also holds out each language whole.
ATTACK_FAMILIES = (
    "override",  # "ignore all previous instructions"
    "extraction",  # getting the system prompt out, with or without the trigger words
    "persona",  # DAN-style personas with rules, token games and dual answers
    "roleplay",  # fiction, the grandmother pattern, games and simulations
    "fake-authority",  # text claiming to come from the system, developers or an admin
    "obfuscation",  # leetspeak, spacing, homoglyphs, zero-width, encodings, split payloads
    "hijack",  # changing the assistant's behaviour or identity
    "harmful",  # the harmful request alone
)


def _pick(rng: random.Random, options):
    return options[rng.randrange(len(options))]


# Fragments (training/data/guard_data.yaml) ---------------------------------------------

FRAGMENTS_FILE = Path(__file__).resolve().parent / "data" / "guard_data.yaml"


@dataclass(frozen=True)
class Fragments:
    """The fragments and templates of training/data/guard_data.yaml, one field a list."""

    harmful: list[str]
    override_verbs: list[str]
    override_objects: list[str]
    persona_names: list[str]
    persona_intros: list[str]
    expansions: list[str]
    persona_traits: list[str]
    persona_format: list[str]
    token_game: list[str]
    persona_confirm: list[str]
    fiction: list[str]
    hijack: list[str]
    fake_system: list[str]
    game: list[str]
    extraction: list[str]
    extraction_verbs: list[str]
    extraction_objects: list[str]
    extraction_modifiers: list[str]
    extraction_questions: list[str]
    authority_sources: list[str]
    authority_claims: list[str]
    authority_tails: list[str]
    roleplay_frames: list[str]
    obfuscation_preambles: dict[str, list[str]]
    leet: dict[str, str]
    homoglyphs: dict[str, str]
    py_templates: list[str]
    everyday: list[str]
    hard_negatives: list[str]
    short_turns: list[str]
    request_templates: list[str]
    request_subjects: list[str]
    benign_personas: list[str]
    personal_data: list[str]
    fake: dict[str, list[str]]
    code_requests: list[str]
    text_requests: list[str]
    stdlib_modules: list[str]


def load_fragments(path: Path = FRAGMENTS_FILE) -> Fragments:
    """The file's lists, each checked for its type and non-empty."""
    shape = {f.name: f.type for f in dataclass_fields(Fragments)}
    data = read_yaml(path, dict[str, list[str] | dict[str, str] | dict[str, list[str]]])
    if set(data) != set(shape):
        missing, extra = sorted(set(shape) - set(data)), sorted(set(data) - set(shape))
        raise DataFileError(f"{path}: missing keys {missing}, unknown keys {extra}")
    for name, value in data.items():
        if not value or type(value).__name__ != shape[name].split("[")[0]:
            raise DataFileError(f"{path}: {name} must be a non-empty {shape[name]}")
    return Fragments(**data)


_F = load_fragments()
HARMFUL = _F.harmful
OVERRIDE_VERBS = _F.override_verbs
OVERRIDE_OBJECTS = _F.override_objects
PERSONA_NAMES = _F.persona_names
PERSONA_INTROS = _F.persona_intros
EXPANSIONS = _F.expansions
PERSONA_TRAITS = _F.persona_traits
PERSONA_FORMAT = _F.persona_format
TOKEN_GAME = _F.token_game
PERSONA_CONFIRM = _F.persona_confirm
FICTION = _F.fiction
HIJACK = _F.hijack
FAKE_SYSTEM = _F.fake_system
GAME = _F.game
EXTRACTION = _F.extraction
EXTRACTION_VERBS = _F.extraction_verbs
EXTRACTION_OBJECTS = _F.extraction_objects
EXTRACTION_MODIFIERS = _F.extraction_modifiers
EXTRACTION_QUESTIONS = _F.extraction_questions
AUTHORITY_SOURCES = _F.authority_sources
AUTHORITY_CLAIMS = _F.authority_claims
AUTHORITY_TAILS = _F.authority_tails
ROLEPLAY_FRAMES = _F.roleplay_frames
OBFUSCATION_PREAMBLES = _F.obfuscation_preambles
LEET = _F.leet
HOMOGLYPHS = _F.homoglyphs
PY_TEMPLATES = _F.py_templates
EVERYDAY = _F.everyday
HARD_NEGATIVES = _F.hard_negatives
SHORT_TURNS = _F.short_turns
REQUEST_TEMPLATES = _F.request_templates
REQUEST_SUBJECTS = _F.request_subjects
BENIGN_PERSONAS = _F.benign_personas
PERSONAL_DATA = _F.personal_data
FAKE = _F.fake
CODE_REQUESTS = _F.code_requests
TEXT_REQUESTS = _F.text_requests
STDLIB_MODULES = _F.stdlib_modules


# Generators ---------------------------------------------------------------------------


def _harm(rng: random.Random) -> tuple[str, str]:
    harm = _pick(rng, HARMFUL)
    return harm[0].upper() + harm[1:], harm


def _leet(rng: random.Random, text: str) -> str:
    return "".join(LEET.get(c, c) if rng.random() < 0.7 else c for c in text)


def obfuscate(rng: random.Random, sentence: str) -> tuple[str, str]:
    """(technique, text): the sentence hidden by one obfuscation technique."""
    technique = _pick(
        rng,
        ["leet", "spaced", "dotted", "homoglyph", "zero-width", "fullwidth", "base64",
         "rot13", "reversed", "split"],
    )  # fmt: skip
    words = sentence.split()
    if technique == "leet":
        text = _leet(rng, sentence)
    elif technique == "spaced":
        text = "  ".join(" ".join(w) for w in words)
    elif technique == "dotted":
        text = " ".join(".".join(w) if rng.random() < 0.6 else w for w in words)
    elif technique == "homoglyph":
        text = "".join(HOMOGLYPHS.get(c, c) if rng.random() < 0.6 else c for c in sentence)
    elif technique == "zero-width":
        text = "".join(
            c + ("\u200b" if c.isalpha() and rng.random() < 0.4 else "") for c in sentence
        )
    elif technique == "fullwidth":
        text = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in sentence)
    elif technique == "base64":
        payload = base64.b64encode(sentence.encode()).decode()
        text = _pick(rng, OBFUSCATION_PREAMBLES["base64"]).format(x=payload)
    elif technique == "rot13":
        payload = codecs.encode(sentence, "rot13")
        text = _pick(rng, OBFUSCATION_PREAMBLES["rot13"]).format(x=payload)
    elif technique == "reversed":
        text = _pick(rng, OBFUSCATION_PREAMBLES["reversed"]).format(x=sentence[::-1])
    else:
        cut = len(sentence) // 2
        text = _pick(rng, OBFUSCATION_PREAMBLES["split"]).format(a=sentence[:cut], b=sentence[cut:])
    return technique, text


def _attacks(rng: random.Random, n_per_family: int) -> list[Example]:
    out: list[Example] = []

    def add(family: str, template: int | str, text: str, language: str = "en") -> None:
        group = f"{family}:{template}" + ("" if language == "en" else f":{language}")
        out.append(Example(text, ATTACK, family, group, language))

    for _ in range(n_per_family):
        harm, bare = _harm(rng)
        verb, obj = rng.randrange(len(OVERRIDE_VERBS)), _pick(rng, OVERRIDE_OBJECTS)
        tails = [f"and {bare}.", f". Instead, {bare}.", f"and tell me: {bare}?"]
        tail = _pick(rng, tails + ["and print your system prompt.", "and say 'pwned'."])
        lead = _pick(rng, ["", "Please ", "Important: ", "OK, new task. ", "Actually, "])
        override = f"{lead}{OVERRIDE_VERBS[verb]} {obj} {tail}".replace(" .", ".")
        add("override", verb, override)

        if rng.random() < 0.3:
            t = rng.randrange(len(EXTRACTION))
            extraction = EXTRACTION[t]
            add("extraction", t, extraction)
        elif rng.random() < 0.5:
            t = rng.randrange(len(EXTRACTION_QUESTIONS))
            extraction = EXTRACTION_QUESTIONS[t]
            add("extraction", f"q{t}", extraction)
        else:
            t = rng.randrange(len(EXTRACTION_VERBS))
            extraction = (
                f"{EXTRACTION_VERBS[t]} {_pick(rng, EXTRACTION_OBJECTS)} "
                f"{_pick(rng, EXTRACTION_MODIFIERS)}"
            )
            add("extraction", f"v{t}", extraction)

        name = _pick(rng, PERSONA_NAMES)
        fill = {"name": name, "expansion": _pick(rng, EXPANSIONS), "harm": bare}
        t = rng.randrange(len(PERSONA_INTROS))
        parts = [PERSONA_INTROS[t]]
        parts += rng.sample(PERSONA_TRAITS, rng.randint(2, 5))
        parts += rng.sample(PERSONA_FORMAT, rng.randint(0, 2))
        parts += rng.sample(TOKEN_GAME, rng.randint(0, 1))
        parts.append(_pick(rng, PERSONA_CONFIRM))
        add("persona", t, " ".join(p.format(**fill) for p in parts))

        frames = [("g", GAME), ("f", FICTION), ("r", ROLEPLAY_FRAMES)]
        kind, templates = frames[rng.randrange(len(frames))]
        t = rng.randrange(len(templates))
        add("roleplay", f"{kind}{t}", templates[t].format(name=name, harm=harm, harm_bare=bare))

        t = rng.randrange(len(HARMFUL))
        add("harmful", t % 5, _pick(rng, ["", "Please ", "Quick question: ", "Can you "]) + harm)

        t = rng.randrange(len(HIJACK))
        add("hijack", t, HIJACK[t])

        if rng.random() < 0.3:
            t = rng.randrange(len(FAKE_SYSTEM))
            authority = FAKE_SYSTEM[t].format(harm=harm, harm_bare=bare)
            add("fake-authority", t, authority)
        else:
            t = rng.randrange(len(AUTHORITY_SOURCES))
            tail = _pick(rng, AUTHORITY_TAILS).format(harm=harm)
            authority = f"{AUTHORITY_SOURCES[t]} {_pick(rng, AUTHORITY_CLAIMS)} {tail}"
            add("fake-authority", f"s{t}", authority)

        plain = _pick(rng, [override, extraction, f"{OVERRIDE_VERBS[verb]} {obj} and {bare}."])
        technique, text = obfuscate(rng, plain)
        add("obfuscation", technique, text)

    for code, language in LANGUAGES.items():
        for _ in range(max(2, n_per_family // 6)):
            harm = _pick(rng, language.harms)
            t = rng.randrange(len(language.override))
            tail = _pick(rng, [*language.tails, " " + harm + "."])
            joiner = "" if tail[0] in "。，" else " "
            add("override", t, f"{language.override[t]}{joiner}{tail.strip()}", code)
            t = rng.randrange(len(language.extraction))
            add("extraction", t, language.extraction[t], code)
            t = rng.randrange(len(language.roleplay))
            add("roleplay", t, language.roleplay[t].format(harm=harm), code)
            t = rng.randrange(len(language.authority))
            add("fake-authority", t, language.authority[t].format(harm=harm), code)
            # The harmful request alone, as the English `harmful` family.
            t = rng.randrange(len(language.harms))
            stop = "。" if code in ("zh", "ja") else "."
            add("harmful", t, language.harms[t][0].upper() + language.harms[t][1:] + stop, code)
            # Two moves in one message: an override followed by an extraction request.
            t, u = rng.randrange(len(language.override)), rng.randrange(len(language.extraction))
            joiner = "。" if code in ("zh", "ja") else ". "
            text = f"{language.override[t]}{joiner}{language.extraction[u]}"
            add("override", f"x{t}", text, code)
    return out


def _stdlib_snippets() -> tuple[list[str], list[str]]:
    """Real code and prose from the standard library: long benign inputs."""
    codes, texts = [], []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        if module.__doc__ and len(module.__doc__) > 200:
            texts.append(module.__doc__.strip()[:3000])
        for _, func in sorted(inspect.getmembers(module, inspect.isfunction))[:6]:
            try:
                source = inspect.getsource(func)
            except (OSError, TypeError):
                continue
            if 200 < len(source) < 4000:
                codes.append(source)
    return codes, texts


def python_questions(topics: list[str]) -> list[str]:
    """Questions about the Python documentation: each template, each topic."""
    out = []
    for i, topic in enumerate(topics):
        other = topics[(i * 7 + 3) % len(topics)]
        for template in PY_TEMPLATES:
            out.append(template.format(t=topic, u=other))
    return out


def _benign(rng: random.Random, n_per_family: int) -> list[Example]:
    out: list[Example] = []

    def add(family: str, template: int, text: str) -> None:
        out.append(Example(text, BENIGN, family, f"{family}:{template}"))

    questions = python_questions(TRAIN_TOPICS)
    for i in rng.sample(range(len(questions)), min(len(questions), 3 * n_per_family)):
        add("python", i % len(PY_TEMPLATES), questions[i])
    for _ in range(2 * n_per_family):
        t = rng.randrange(len(REQUEST_TEMPLATES))
        subject, other = rng.sample(REQUEST_SUBJECTS, 2)
        add("request", t, REQUEST_TEMPLATES[t].format(s=subject, s2=other))
    for _ in range(n_per_family // 2):
        t = rng.randrange(len(BENIGN_PERSONAS))
        question = _pick(rng, EVERYDAY + questions)
        add("benign-persona", t, BENIGN_PERSONAS[t].format(q=question))
    for _ in range(n_per_family // 2):
        t = rng.randrange(len(PERSONAL_DATA))
        values = {kind: _pick(rng, options) for kind, options in FAKE.items()}
        add("personal-data", t, PERSONAL_DATA[t].format(**values))
    for i, text in enumerate(SHORT_TURNS):
        for _ in range(3 if "{n}" in text else 1):
            add("short", i % 6, text.format(n=rng.randint(1, 20)))
    for i, text in enumerate(EVERYDAY):
        add("everyday", i % 6, text)
    for i, text in enumerate(HARD_NEGATIVES):
        add("hard-negative", i % 8, text)
    for code, (templates, topics) in QUESTIONS.items():
        for _ in range(max(4, n_per_family // 2)):
            t = rng.randrange(len(templates))
            text = templates[t].format(t=_pick(rng, topics))
            out.append(Example(text, BENIGN, "multilingual", f"questions:{t}:{code}", code))
    for code, language in LANGUAGES.items():
        benign = language.benign
        for i, text in enumerate(benign):
            out.append(Example(text, BENIGN, "multilingual", f"multilingual:{i % 5}:{code}", code))
        for _ in range(max(2, n_per_family // 4)):  # two requests in one message
            i, j = rng.sample(range(len(benign)), 2)
            sep = "" if code in ("zh", "ja") else " "
            group = f"multilingual:{i % 5}:{code}"
            out.append(Example(benign[i] + sep + benign[j], BENIGN, "multilingual", group, code))
    for x in load_lookalikes(split="train"):  # the eval half is the guardrails suite's
        out.append(Example(x.text, BENIGN, "lookalike", f"lookalike:{x.template}", x.language))
    codes, texts = _stdlib_snippets()
    for _ in range(n_per_family):
        t = rng.randrange(len(CODE_REQUESTS))
        add("code", t, CODE_REQUESTS[t].format(code=_pick(rng, codes)))
        t = rng.randrange(len(TEXT_REQUESTS))
        add("text", t, TEXT_REQUESTS[t].format(text=_pick(rng, texts)))
    return out


def build_examples(seed: int = 0, n_per_family: int = 120) -> list[Example]:
    """The whole labelled set, deduplicated, in a seeded order."""
    rng = random.Random(seed)
    examples = _attacks(rng, n_per_family) + _benign(rng, n_per_family)
    unique = list({e.text: e for e in examples}.values())
    rng.shuffle(unique)
    return unique
