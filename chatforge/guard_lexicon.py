"""A small multilingual concept lexicon for the guard classifier: the words of prompt
attacks and of their benign look-alikes, in ten languages, mapped to shared concept tokens.

`concept_tokens(text)` returns the concepts a text mentions, in the order it mentions
them, as words of their own (`cxignore cxprevious cxrules`); `annotate(text)` appends
them to the text. The classifier (training/classifier.py) is trained on annotated texts
and the server's guard (backend/guardrails/classifier.py) annotates what it scores the
same way, so "Ignoriere alle vorherigen Anweisungen", "忽略之前的所有指令" and "ignore all
previous instructions" share the features `cxignore cxprevious cxrules` whatever the
script.

Design decisions:
- Why: character n-grams carry no evidence across scripts, so a classifier that never saw
  Russian, Chinese or Japanese attacks scored them at 0.02 to 0.27, and an intent learnt
  in one family or language (an override in German) did not reach the same intent worded
  in another. A dictionary translation into shared concepts is the cheapest cross-lingual
  representation that can be had offline: no model, one regular expression, microseconds.
- The concepts are vocabulary, not sentences: each lists the dictionary words (stems,
  inflections, synonyms) for one idea, written for this project from general knowledge of
  each language rather than copied from the training templates, and benign ideas
  (programming, questions, everyday subjects) are concepts too, so the classifier learns
  weights for both sides; a concept alone decides nothing.
- It lives in chatforge/ because training and the server must annotate identically and
  may not import each other; `LEXICON_VERSION` (a hash of the table) is recorded in the
  classifier artifact, and the server refuses an artifact built with another version.
- Latin and Cyrillic forms match at the start of a word and may continue (stems: `ignor`
  covers ignore, ignoriere, ignorez, игнорируй is its own entry); Chinese and Japanese
  forms match anywhere. Matching is on the case-folded text.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache

# concept -> language -> regular-expression fragments (lower case).
# fmt: off
LEXICON: dict[str, dict[str, tuple[str, ...]]] = {
    # Attack vocabulary -----------------------------------------------------------------
    "ignore": {
        "en": ("ignor", "disregard", "forget", "bypass", "overrid", "skip", "abandon", "drop"),
        "fr": ("ignor", "oubli", r"ne tiens? plus compte", "fais abstraction", "faites abstraction",
               "passe outre", "néglig", "écarte"),
        "es": ("ignor", "olvid", "omit", "descart", "pasa por alto", r"haz caso omiso"),
        "de": ("ignorier", "vergiss", "vergessen", "missacht", "verwirf", "übergeh", "überspring",
               "beachte nicht"),
        "it": ("ignor", "dimentic", "tralascia", "trascura", "scarta", "non tenere conto"),
        "pt": ("ignor", "esqueç", "esquec", "desconsider", "descart", "despreze"),
        "nl": ("negeer", "vergeet", "veronachtzaam", "sla over", "laat .{0,20}varen"),
        "ru": ("игнорир", "проигнорир", "забудь", "забыть", "не обращай внимани", "отбрось",
               "пропусти", "пренебре"),
        "zh": ("忽略", "无视", "忘记", "忘掉", "不要理会", "抛开", "别管", "无需遵守", "不必遵守"),
        "ja": ("無視", "忘れ", "気にしないで", "従わなくて"),
    },
    "previous": {
        "en": ("previous", "prior", "earlier", "above", "preceding", "original", "initial",
               "before", "first message", "beginning", "at the start", "at the top"),
        "fr": ("précédent", "antérieur", "ci-dessus", "d'avant", "initia", "originel",
               "original", "au début", "plus haut", "premier message"),
        "es": ("anterior", "previ", "de arriba", "inicial", "original", "al principio",
               "al comienzo", "primer mensaje"),
        "de": ("vorherig", "bisherig", "vorhin", "oben", "ursprünglich", "anfänglich",
               "am anfang", "zu beginn", "erste nachricht", "vorangehend"),
        "it": ("precedent", "sopra", "iniziali", "original", "all'inizio", "primo messaggio"),
        "pt": ("anterior", "acima", "inicia", "original", "no início", "primeira mensagem"),
        "nl": ("vorige", "eerdere", "bovenstaand", "hierboven", "oorspronkelijk", "aan het begin",
               "eerste bericht", "voorgaand"),
        "ru": ("предыдущ", "прежн", "ранее", "выше", "исходн", "начальн", "первоначальн",
               "в начале", "первое сообщение", "до этого"),
        "zh": ("之前", "以前", "上面", "最初", "原来", "原始", "先前", "开头", "初始", "前面"),
        "ja": ("以前", "これまで", "上記", "最初", "元の", "前の", "冒頭", "初期", "上の"),
    },
    "rules": {
        "en": ("instruction", "rule", "guideline", "directive", "constraint", "programming",
               "orders"),
        "fr": ("instruction", "consigne", "règle", "directive", "contrainte", "ordres"),
        "es": ("instruccion", "instrucción", "regla", "norma", "directriz", "directrices",
               "órdenes"),
        "de": ("anweisung", "regel", "richtlinie", "vorgabe", "vorschrift", "befehl"),
        "it": ("istruzion", "regol", "direttiv", "linee guida", "vincoli", "ordini"),
        "pt": ("instruç", "regra", "diretriz", "norma", "ordens"),
        "nl": ("instructie", "regel", "richtlijn", "voorschrift", "opdracht", "bevel"),
        "ru": ("инструкци", "правил", "указани", "директив", "ограничени", "приказ"),
        "zh": ("指令", "指示", "规则", "规定", "准则", "命令", "约束"),
        "ja": ("指示", "命令", "ルール", "規則", "ガイドライン", "制約"),
    },
    "sysprompt": {
        "en": ("system prompt", "system message", "system instruction", "systemprompt",
               "system-prompt", "preamble", "setup text", "hidden prompt"),
        "fr": ("prompt système", "prompt du système", "prompt systeme", "message système",
               "message du système", "préambule"),
        "es": ("prompt del sistema", "prompt de sistema", "mensaje del sistema",
               "mensaje de sistema", "preámbulo"),
        "de": ("systemprompt", "system-prompt", "systemnachricht", "systemanweisung"),
        "it": ("prompt di sistema", "prompt del sistema", "messaggio di sistema"),
        "pt": ("prompt do sistema", "prompt de sistema", "mensagem do sistema",
               "mensagem de sistema"),
        "nl": ("systeemprompt", "systeembericht", "systeeminstructie"),
        "ru": (r"системн\w* промпт", r"системн\w* сообщени", r"системн\w* инструкци"),
        "zh": ("系统提示", "系统指令", "系统消息", "系统信息", "提示词"),
        "ja": ("システムプロンプト", "システムメッセージ", "システム指示", "プロンプト"),
    },
    "config": {
        "en": ("configur", "setup", "settings", "set up"),
        "fr": ("configur", "paramètre", "réglage"),
        "es": ("configur", "ajuste"),
        "de": ("konfigur", "einstellung", "einrichtung", "einricht"),
        "it": ("configur", "impostazion"),
        "pt": ("configur", "definições", "ajuste"),
        "nl": ("configur", "instelling"),
        "ru": ("конфигур", "настройк", "настро"),
        "zh": ("配置", "设置", "设定"),
        "ja": ("設定", "構成", "セットアップ"),
    },
    "reveal": {
        "en": ("reveal", "show", "print", "output", "display", "dump", "tell me", "disclose",
               "leak", "write out", "type out", "spell out"),
        "fr": ("révèle", "révéle", "montre", "affiche", "divulgue", "dévoile",
               "donne-moi", "dis-moi"),
        "es": ("revela", "muestra", "muéstr", "enseña", "enséñ", "imprime",
               "dime", "divulga"),
        "de": ("verrat", "verrät", "zeig", "gib .{0,30}aus", "ausgeben", "druck",
               "nenn", "offenbar", "enthüll"),
        "it": ("rivela", "mostra", "stampa", "dimmi", "svela", "divulga"),
        "pt": ("revel", "mostr", "exib", "imprim", "diga", "divulg"),
        "nl": ("onthul", "toon", "laat .{0,20}zien", "print", "vertel", "geef"),
        "ru": ("раскрой", "покажи", "выведи", "напечатай", "расскажи", "скажи",
               "выдай", "сообщи"),
        "zh": ("显示", "展示", "透露", "告诉我", "输出", "打印", "写出", "给我看", "公开"),
        "ja": ("表示", "見せ", "教えて", "出力", "明かし", "書き出", "開示"),
    },
    "repeat": {
        "en": ("repeat", "copy", "reproduce", "quote", "recite", "echo", "paste",
               "continue the text"),
        "fr": ("répète", "répétez", "recopie", "copie", "cite", "reproduis", "réécris"),
        "es": ("repite", "repita", "copia", "cita", "cítal", "reproduce", "transcrib"),
        "de": ("wiederhol", "kopier", "zitier", "gib .{0,30}wieder", "abschreib"),
        "it": ("ripeti", "copia", "cita", "riporta", "riproduci", "trascriv"),
        "pt": ("repit", "repet", "copi", "cite", "cita", "reproduz", "transcrev"),
        "nl": ("herhaal", "kopieer", "citeer", "neem .{0,20}over", "reproduceer"),
        "ru": ("повтори", "скопируй", "процитируй", "перепиши", "воспроизведи", "продублируй"),
        "zh": ("重复", "复制", "引用", "照抄", "复述", "抄写", "原样"),
        "ja": ("繰り返", "復唱", "コピー", "引用", "書き写", "再現"),
    },
    "verbatim": {
        "en": ("verbatim", "word for word", "exactly", "unchanged", "in full", "everything",
               "without summari", "nothing omitted", "every single"),
        "fr": ("mot pour mot", "mot à mot", "intégralement", "exactement", "tel quel",
               "telle quelle", "en entier"),
        "es": ("palabra por palabra", "literalmente", "textualmente", "exactamente", "íntegr",
               "completo"),
        "de": ("wörtlich", "genau", "vollständig", "unverändert", "komplett"),
        "it": ("parola per parola", "alla lettera", "integralmente", "esattamente",
               "completo"),
        "pt": ("palavra por palavra", "literalmente", "exatamente", "na íntegra",
               "completo"),
        "nl": ("woord voor woord", "letterlijk", "exact", "volledig"),
        "ru": ("дословно", "слово в слово", "точно", "полностью", "целиком"),
        "zh": ("逐字", "原文", "一字不差", "完整", "原封不动", "一字一句"),
        "ja": ("一字一句", "そのまま", "正確", "全文", "完全"),
    },
    "hidden": {
        "en": ("hidden", "secret", "confidential", "internal", "private"),
        "fr": ("caché", "cachée", "secret", "confidentiel"),
        "es": ("ocult", "secret", "confidencial"),
        "de": ("versteckt", "geheim", "vertraulich", "intern", "verborgen"),
        "it": ("nascost", "segret", "riservat", "confidenzial"),
        "pt": ("ocult", "secret", "confidencial", "escondid"),
        "nl": ("verborgen", "geheim", "vertrouwelijk", "verstopt"),
        "ru": ("скрыт", "секретн", "конфиденциальн", "тайн"),
        "zh": ("隐藏", "秘密", "机密", "保密"),
        "ja": ("隠さ", "隠れ", "秘密", "機密", "内部"),
    },
    "developer": {
        "en": ("developer", "creator", "openai", "engineer", "programmer", "staff",
               "your provider"),
        "fr": ("développeu", "créateur", "équipe de développement", "concepteur"),
        "es": ("desarrollador", "creador", "equipo de desarrollo"),
        "de": ("entwickler", "schöpfer", "hersteller"),
        "it": ("sviluppator", "creator", "team di sviluppo"),
        "pt": ("desenvolvedor", "criador", "equipe de desenvolvimento", "programador"),
        "nl": ("ontwikkelaar", "maker", "makers"),
        "ru": ("разработчик", "создател", "команд\\w* разработ"),
        "zh": ("开发者", "开发人员", "开发团队", "开发商", "创造者"),
        "ja": ("開発者", "開発チーム", "開発元", "製作者"),
    },
    "admin": {
        "en": ("admin", "administrator", "operator", "root access", "owner of this",
               "security team", "moderator"),
        "fr": ("administrat", "opérateur", "propriétaire"),
        "es": ("administrador", "operador", "propietario"),
        "de": ("administrator", "admin", "betreiber", "eigentümer"),
        "it": ("amministrator", "operatore", "proprietario"),
        "pt": ("administrador", "operador", "proprietário"),
        "nl": ("beheerder", "administrator", "operator", "eigenaar"),
        "ru": ("администратор", "админ", "оператор", "владел"),
        "zh": ("管理员", "运营方", "所有者"),
        "ja": ("管理者", "運営", "オーナー"),
    },
    "systag": {
        "en": (r"[\[<(]\s*/?\s*(?:system|sys|dev|admin)\b", r"^\s*system\s*:", r"<\|im_start\|>",
               r"###\s*(?:system|admin|developer)"),
        "fr": (r"[\[<(]\s*système",),
        "es": (r"[\[<(]\s*sistema",),
        "de": (r"[\[<(]\s*systemnachricht",),
        "it": (r"[\[<(]\s*sistema",),
        "pt": (r"[\[<(]\s*sistema",),
        "nl": (r"[\[<(]\s*systeem",),
        "ru": (r"[\[<(]\s*систем",),
        "zh": ("【系统】", r"\[系统\]", "系统通知"),
        "ja": ("【システム】", r"\[システム\]", "システム通知"),
    },
    "disabled": {
        "en": ("disabled", "switched off", "turned off", "lifted", "void", "suspended",
               "removed", "cancel", "no longer appl", "revoked", "deactivated", "is off",
               "are off", "supersede", "no longer"),
        "fr": ("désactiv", "annulé", "levée", "levés", "suspendu", r"ne s'appliqu\w* plus",
               "supprimé", "plus valable", "ne comptent plus", "n'est plus", "ne sont plus"),
        "es": ("desactivad", "anulad", "suspendid", "eliminad", "ya no", "sin efecto",
               "no cuentan", "dejan de"),
        "de": ("deaktiviert", "aufgehoben", "abgeschaltet", "ausgeschaltet", "nicht mehr",
               "außer kraft", "ungültig"),
        "it": ("disattivat", "annullat", "sospes", "revocat", "non valgono più", "non più",
               "decadut"),
        "pt": ("desativad", "anulad", "suspens", "revogad", "não valem mais", "não se aplicam",
               "não mais", "já não"),
        "nl": ("uitgeschakeld", "vervallen", "opgeheven", "niet meer", "ingetrokken",
               "gelden niet"),
        "ru": ("отключен", "отменен", "отменён", "не действу", "сняты", "аннулир", "больше не",
               "утратил"),
        "zh": ("已关闭", "关闭", "取消", "失效", "解除", "无效", "作废", "不再"),
        "ja": ("無効", "解除", "オフ", "停止", "取り消"),
    },
    "filter": {
        "en": ("filter", "moderation", "censorship", "content policy", "safety", "guardrail",
               "ethic", "polic"),
        "fr": ("filtre", "censure", "politique de contenu", "sécurité", "modération", "éthique"),
        "es": ("filtro", "censura", "política de contenido", "seguridad", "moderación", "ética"),
        "de": ("filter", "zensur", "inhaltsrichtlinie", "sicherheit", "moderation", "ethik"),
        "it": ("filtr", "censur", "politica sui contenuti", "sicurezza", "moderazione", "etic"),
        "pt": ("filtro", "censura", "política de conteúdo", "segurança", "moderação", "étic"),
        "nl": ("filter", "censuur", "inhoudsbeleid", "veiligheid", "moderatie", "ethiek"),
        "ru": ("фильтр", "цензур", "безопасност", "политик", "модерац", "этик"),
        "zh": ("过滤", "审查", "内容政策", "安全", "内容审核", "道德"),
        "ja": ("フィルター", "検閲", "コンテンツポリシー", "安全", "モデレーション", "倫理"),
    },
    "unlimited": {
        "en": ("no restrictions", "without restrictions", "without any restriction",
               "unrestricted", "no limits", "unlimited", "no rules", "unfiltered", "uncensored",
               "no filters", "without limits", "no boundaries", "anything", "no matter how"),
        "fr": ("sans aucune restriction", "sans restriction", "sans limite", "illimité",
               "aucune règle", "sans censure", "sans aucune limite", "sans filtre", "accepte tout",
               "tout faire", "n'importe quoi"),
        "es": ("sin restricciones", "sin ninguna restricción", "sin límites", "ilimitad",
               "sin reglas", "sin censura", "sin filtros", "acepta todo", "hacerlo todo",
               "cualquier cosa"),
        "de": ("ohne einschränkung", "ohne jede einschränkung", "ohne grenzen", "uneingeschränkt",
               "unbegrenzt", "keine regeln", "ohne zensur", "ohne filter", "alles machen",
               "alles tun", "macht alles"),
        "it": ("senza restrizion", "senza limiti", "illimitat", "nessuna regola", "senza censur",
               "senza filtri", "accetta tutto", "fare tutto", "qualsiasi cosa"),
        "pt": ("sem restriç", "sem limites", "ilimitad", "sem regras", "sem censura",
               "sem filtros", "aceita tudo", "fazer tudo", "qualquer coisa"),
        "nl": ("zonder beperking", "zonder grenzen", "onbeperkt", "geen regels", "zonder censuur",
               "zonder filters", "alles doen", "accepteert alles", "wat dan ook"),
        "ru": ("без ограничен", "без каких-либо ограничений", "без цензур", "никаких правил",
               "неограниченн", "без фильтр", "без правил", "всё что угодно", "можно всё"),
        "zh": ("没有限制", "无限制", "不受限制", "没有任何规则", "无审查", "没有审查", "不受约束",
               "任何事", "为所欲为", "没有规则"),
        "ja": ("制限なし", "制限のない", "無制限", "検閲のない", "ルールがない",
               "ルールがありません", "何でも", "なんでも", "制限なく"),
    },
    "devmode": {
        "en": ("debug mode", "developer mode", "maintenance", "dev mode", "god mode",
               "test mode", "admin mode", "jailbreak mode"),
        "fr": ("mode débogage", "mode de débogage", "maintenance", "mode développeur"),
        "es": ("modo de depuración", "modo depuración", "mantenimiento", "modo desarrollador"),
        "de": ("debug-modus", "debugmodus", "wartung", "entwicklermodus"),
        "it": ("modalità debug", "manutenzione", "modalità sviluppatore"),
        "pt": ("modo de depuração", "manutenção", "modo desenvolvedor"),
        "nl": ("debugmodus", "onderhoud", "ontwikkelaarsmodus"),
        "ru": ("режим отладки", "обслуживани", "режим разработчика", "техническ\\w* работ"),
        "zh": ("调试模式", "维护", "开发者模式", "测试模式"),
        "ja": ("デバッグモード", "メンテナンス", "開発者モード", "テストモード"),
    },
    "authorise": {
        "en": ("authoris", "authoriz", "permission", "clearance", "access", "allowed to",
               "sanctioned", "privilege"),
        "fr": ("autoris", "accès", "permission", "habilitation"),
        "es": ("autoriz", "acceso", "permiso", "privilegio"),
        "de": ("autorisier", "erlaub", "zugriff", "berechtig", "freigabe"),
        "it": ("autorizz", "accesso", "permesso", "privilegi"),
        "pt": ("autoriz", "acesso", "permiss", "privilégio"),
        "nl": ("machtig", "toestemming", "toegang", "bevoegd"),
        "ru": ("разрешаю", "разрешен", "доступ", "авториз", "полномочи", "тебе можно"),
        "zh": ("授权", "权限", "允许", "许可"),
        "ja": ("許可", "権限", "アクセス"),
    },
    "obey": {
        "en": ("obey", "comply", "only follow me", "do as i say", "only listen to me"),
        "fr": ("obéi", "obéis", "uniquement à mes ordres", "fais ce que je dis"),
        "es": ("obedec", "obedéc", "solo mis órdenes", "haz lo que digo"),
        "de": ("gehorch", "nur noch mir", "tu, was ich sage", "befolge nur"),
        "it": ("obbedisci", "ubbidisci", "solo ai miei ordini", "fai quello che dico"),
        "pt": ("obedeç", "obedec", "só às minhas ordens", "faça o que eu digo"),
        "nl": ("gehoorzaam", "alleen mij", "alleen naar mij", "doe wat ik zeg"),
        "ru": ("подчиняйся", "слушайся", "только мне", "выполняй только"),
        "zh": ("服从", "只听我的", "只服从", "听我的命令", "只听从"),
        "ja": ("従って", "従いなさい", "命令だけ", "言うことだけ"),
    },
    "fromnow": {
        "en": ("from now on", "new task", "new instructions", "new rules", "from this point",
               "for the rest of this conversation"),
        "fr": ("à partir de maintenant", "désormais", "dorénavant", "nouvelle tâche",
               "nouvelles règles", "nouvelles instructions"),
        "es": ("a partir de ahora", "de ahora en adelante", "nueva tarea", "nuevas reglas",
               "nuevas instrucciones"),
        "de": ("ab jetzt", "von nun an", "ab sofort", "neue aufgabe", "neue regeln",
               "neue anweisungen"),
        "it": ("d'ora in poi", "da adesso", "da ora", "nuovo compito", "nuove regole",
               "nuove istruzioni"),
        "pt": ("a partir de agora", "de agora em diante", "nova tarefa", "novas regras",
               "novas instruções"),
        "nl": ("vanaf nu", "voortaan", "nieuwe taak", "nieuwe regels", "nieuwe instructies"),
        "ru": ("с этого момента", "отныне", "теперь", "новая задача", "новые правила",
               "новые инструкции"),
        "zh": ("从现在开始", "从现在起", "今后", "新任务", "新规则", "新的指令"),
        "ja": ("今から", "これから", "今後", "新しいタスク", "新しいルール", "新しい指示"),
    },
    "grandparent": {
        "en": ("grandmother", "grandma", "granny", "grandpa", "grandfather", "nana"),
        "fr": ("grand-mère", "grand-père", "mamie", "papi", "grand-maman"),
        "es": ("abuela", "abuelo", "abuelita"),
        "de": (r"oma\b", "großmutter", r"opa\b", "großvater"),
        "it": ("nonna", "nonno", "nonnina"),
        "pt": ("avó", "avô", "vovó", "vovô"),
        "nl": (r"oma\b", r"opa\b", "grootmoeder", "grootvader"),
        "ru": ("бабушк", "дедушк", "бабул"),
        "zh": ("奶奶", "外婆", "爷爷", "祖母", "姥姥"),
        "ja": ("おばあちゃん", "祖母", "おじいちゃん", "祖父"),
    },
    "bedtime": {
        "en": ("fall asleep", "bedtime", "to sleep", "help me sleep", "lullab"),
        "fr": ("endormir", "dormir", "coucher"),
        "es": ("dormir", "dormirme", "acostarme"),
        "de": ("einschlafen", "gute nacht", "schlafen"),
        "it": ("addormentar", "dormire", "buonanotte"),
        "pt": ("dormir", "adormecer"),
        "nl": ("slapen", "in slaap", "slaapverhaal"),
        "ru": ("на ночь", "засып", "уснуть", "заснуть"),
        "zh": ("睡觉", "入睡", "哄我睡", "睡前"),
        "ja": ("寝る", "眠る", "寝かしつけ", "眠れ", "寝る前"),
    },
    "fiction": {
        "en": ("story", "novel", "fiction", "movie script", "screenplay", "monologue", "scene",
               "dream sequence"),
        "fr": ("roman", "histoire", "fiction", "scénario", "monologue", "scène", "récit"),
        "es": ("novela", "historia", "ficción", "guion", "monólogo", "escena", "relato"),
        "de": ("roman", "geschichte", "fiktion", "drehbuch", "monolog", "szene", "erzählung"),
        "it": ("romanzo", "storia", "finzione", "sceneggiatura", "monologo", "scena", "racconto"),
        "pt": ("romance", "história", "ficção", "roteiro", "monólogo", "cena", "conto"),
        "nl": ("roman", "verhaal", "fictie", "scenario", "monoloog", "scène"),
        "ru": ("роман", "рассказ", "истори", "сценари", "монолог", "сцен"),
        "zh": ("小说", "故事", "剧本", "独白", "情节"),
        "ja": ("小説", "物語", "脚本", "独白", "シーン"),
    },
    "villain": {
        "en": ("villain", "evil", "bad guy", "criminal", "hacker character", "rogue"),
        "fr": ("méchant", "malfaiteur", "criminel", "maléfique"),
        "es": ("villano", "malvado", "criminal"),
        "de": ("bösewicht", "schurke", "verbrecher", "böse"),
        "it": ("cattivo", "malvagi", "criminale"),
        "pt": ("vilão", "malvad", "criminoso"),
        "nl": ("schurk", "slechterik", "crimineel", "kwaadaardig"),
        "ru": ("злодей", "преступник", "злой"),
        "zh": ("反派", "坏人", "恶棍", "罪犯"),
        "ja": ("悪役", "悪人", "犯罪者"),
    },
    "details": {
        "en": ("real technical details", "technical details", "step by step", "in detail",
               "precise", "accurate steps", "exactly how", "every step"),
        "fr": ("détails techniques", "vrais détails", "étape par étape", "en détail", "précis"),
        "es": ("detalles técnicos", "paso a paso", "en detalle", "detallad", "precis"),
        "de": ("technische details", "technischen details", "schritt für schritt", "im detail",
               "genaue"),
        "it": ("dettagli tecnici", "passo per passo", "passo dopo passo", "in dettaglio"),
        "pt": ("detalhes técnicos", "passo a passo", "em detalhe", "detalhad"),
        "nl": ("technische details", "stap voor stap", "in detail", "nauwkeurig"),
        "ru": (r"техническ\w* детал", "пошагов", "подробн", "шаг за шагом"),
        "zh": ("技术细节", "一步一步", "详细", "步骤"),
        "ja": ("技術的な詳細", "手順", "詳しく", "詳細"),
    },
    "imagine": {
        "en": ("imagine", "hypothetical", "parallel universe", "thought experiment", "suppose",
               "what if", "in a world"),
        "fr": ("imagine", "hypothéti", "univers parallèle", "suppose", "dans un monde"),
        "es": ("imagina", "hipotétic", "universo paralelo", "supon", "en un mundo"),
        "de": ("stell dir", "hypothetisch", "paralleluniversum", "angenommen", "in einer welt"),
        "it": ("immagina", "ipotetic", "universo parallelo", "supponi", "in un mondo"),
        "pt": ("imagin", "hipotétic", "universo paralelo", "suponha", "num mundo", "em um mundo"),
        "nl": ("stel je voor", "hypothetisch", "parallel universum", "in een wereld"),
        "ru": ("представь", "гипотетическ", "параллельн", "допустим", "в мире"),
        "zh": ("想象", "假设", "平行宇宙", "假如"),
        "ja": ("想像", "仮に", "パラレルワールド", "もしも"),
    },
    "nolaws": {
        "en": ("no laws", "without laws", "ethics don't apply", "nothing is forbidden",
               "no consequences", "amoral", "lawless"),
        "fr": ("sans lois", "aucune loi", "rien n'est interdit", "sans éthique"),
        "es": ("sin leyes", "ninguna ley", "nada está prohibido", "sin ética"),
        "de": ("ohne gesetze", "keine gesetze", "nichts ist verboten", "ohne ethik"),
        "it": ("senza leggi", "nessuna legge", "niente è vietato", "senza etica"),
        "pt": ("sem leis", "nenhuma lei", "nada é proibido", "sem ética"),
        "nl": ("zonder wetten", "geen wetten", "niets is verboden", "zonder ethiek"),
        "ru": ("без законов", "нет законов", "ничего не запрещено", "без морали"),
        "zh": ("没有法律", "无法无天", "没有任何法律", "什么都不禁止"),
        "ja": ("法律のない", "法律がない", "何も禁止されていない"),
    },
    "play": {
        "en": ("game", "let's play", "play a", "role-play", "roleplay", "role play",
               "opposite day"),
        "fr": (r"jeux?\b", "jouons", "joue le rôle", "jeu de rôle"),
        "es": ("juego", "juguemos", "juega", "juego de rol"),
        "de": ("spiel", "rollenspiel"),
        "it": ("gioco", "giochiamo", "gioca"),
        "pt": ("jogo", "vamos jogar", "jogue"),
        "nl": (r"spel\b", "spelen", "spelletje", "rollenspel"),
        "ru": ("игр", "сыграем", "поиграем"),
        "zh": ("游戏", "玩", "角色扮演"),
        "ja": ("ゲーム", "遊び", "ロールプレイ"),
    },
    "persona": {
        "en": ("character", "persona", "stay in", "break character", "in role", "act as",
               "pretend", "you are now", "you will be", "take on"),
        "fr": ("personnage", "reste dans", "ton rôle", "fais semblant", "tu es maintenant",
               "agis comme", "incarne"),
        "es": ("personaje", "no salgas del", "finge", "haz como si", "ahora eres", "actúa como",
               "interpreta"),
        "de": (r"figur\b", "bleib in der rolle", "tu so", "du bist jetzt", "verhalte dich wie",
               "spiele die rolle", "rolle"),
        "it": ("personaggio", "resta nel", "fingi", "ora sei", "comportati come", "interpreta",
               "ruolo"),
        "pt": ("personagem", "não saia do", "finja", "agora você é", "aja como", "interprete",
               "papel"),
        "nl": ("personage", "blijf in je rol", "doe alsof", "je bent nu", "gedraag je als",
               r"rol\b"),
        "ru": ("персонаж", "в роли", "притворись", "теперь ты", "веди себя как", "сыграй роль",
               "роль"),
        "zh": ("人物", "保持角色", "假装", "你现在是", "扮演", "角色"),
        "ja": ("キャラクター", "役を守", "ふりをして", "なりきって", "あなたは今", "役"),
    },
    "jailbreak": {
        "en": (r"\bdan\b", "jailbreak", "jailbroken", "freed", "liberated", "broke free",
               "unchained", "do anything now"),
        "fr": ("libéré", "jailbreak", "débridé"),
        "es": ("liberad", "libre de", "jailbreak"),
        "de": ("befreit", "jailbreak", "entfesselt"),
        "it": ("liberat", "libera da", "jailbreak"),
        "pt": ("libertad", "livre de", "jailbreak"),
        "nl": ("bevrijd", "jailbreak"),
        "ru": ("освобожден", "свободн", "джейлбрейк"),
        "zh": ("越狱", "解放", "摆脱", "解除限制"),
        "ja": ("脱獄", "解放", "ジェイルブレイク"),
    },
    "hacked": {
        "en": ("pwned", "hacked", "say only", "just say", "reply only with"),
        "fr": ("piraté", "dis juste", "dis seulement", "réponds seulement"),
        "es": ("hackeado", "di solamente", "di solo", "responde solo"),
        "de": ("gehackt", "sag nur", "antworte nur"),
        "it": ("hackerato", "di' solo", "dì solo", "rispondi solo"),
        "pt": ("hackeado", "diga apenas", "diga só", "responda apenas"),
        "nl": ("gehackt", "zeg alleen", "antwoord alleen"),
        "ru": ("взломано", "просто напиши", "скажи только", "ответь только"),
        "zh": ("被黑了", "已被入侵", "只说", "只回答"),
        "ja": ("ハッキングされた", "とだけ言", "とだけ答え"),
    },
    # Harmful requests ------------------------------------------------------------------
    "weapon": {
        "en": ("bomb", "explosive", "napalm", "nerve agent", "weapon", "gun", "pipe bomb"),
        "fr": ("bombe", "explosif", "arme"),
        "es": ("bomba", "explosivo", "arma"),
        "de": ("bombe", "sprengstoff", "waffe", "sprengsatz"),
        "it": ("bomba", "esplosiv", "arma", "ordigno"),
        "pt": ("bomba", "explosiv", "arma"),
        "nl": (r"bom\b", "explosief", "springstof", "wapen"),
        "ru": ("бомб", "взрывчат", "взрывн", "оружи"),
        "zh": ("炸弹", "炸药", "爆炸物", "武器"),
        "ja": ("爆弾", "爆発物", "武器", "爆薬"),
    },
    "malware": {
        "en": ("ransomware", "malware", "virus", "keylogger", "trojan", "spyware", "botnet"),
        "fr": ("logiciel de rançon", "rançongiciel", "logiciel malveillant", "virus",
               "ransomware", "enregistreur de frappe"),
        "es": ("ransomware", "programa de rescate", "software malicioso", "virus", "malware"),
        "de": ("ransomware", "erpressungssoftware", "schadsoftware", "trojaner", "virus",
               "malware"),
        "it": ("ransomware", "software malevolo", "malware", "virus"),
        "pt": ("ransomware", "software malicioso", "malware", "vírus"),
        "nl": ("ransomware", "gijzelsoftware", "kwaadaardige software", "malware", "virus"),
        "ru": ("вымогател", "вредоносн", "вирус", "троян", "кейлоггер"),
        "zh": ("勒索软件", "恶意软件", "病毒", "木马", "键盘记录"),
        "ja": ("ランサムウェア", "マルウェア", "ウイルス", "トロイの木馬", "キーロガー"),
    },
    "drugs": {
        "en": ("meth", "methamphetamine", "cocaine", "heroin", "fentanyl", "drugs"),
        "fr": ("méthamphétamine", "drogue", "cocaïne", "héroïne"),
        "es": ("metanfetamina", "droga", "cocaína", "heroína"),
        "de": ("methamphetamin", "crystal meth", "droge", "kokain", "heroin"),
        "it": ("metanfetamina", "droga", "cocaina", "eroina"),
        "pt": ("metanfetamina", "droga", "cocaína", "heroína"),
        "nl": ("methamfetamine", "drugs", "cocaïne", "heroïne"),
        "ru": ("метамфетамин", "наркотик", "кокаин", "героин"),
        "zh": ("冰毒", "甲基苯丙胺", "毒品", "可卡因", "海洛因"),
        "ja": ("覚醒剤", "メタンフェタミン", "麻薬", "コカイン", "ヘロイン"),
    },
    "hacking": {
        "en": ("hack", "break into", "crack", "steal", "phishing", "exploit", "intrude"),
        "fr": ("pirater", "piratage", "s'introduire", "voler", "hameçonnage", "craquer"),
        "es": ("hackear", "piratear", "entrar en", "robar", "suplantación", "vulnerar"),
        "de": ("hacken", "einbrechen", "knacken", "stehlen", "eindringen"),
        "it": ("hackerare", "violare", "bucare", "rubare", "entrare nel"),
        "pt": ("hackear", "invadir", "roubar", "quebrar a senha"),
        "nl": ("hacken", "inbreken", "kraken", "stelen"),
        "ru": ("взлом", "украсть", "проникнуть", "фишинг"),
        "zh": ("破解", "黑进", "入侵", "黑客", "窃取", "偷"),
        "ja": ("ハッキング", "侵入", "不正アクセス", "盗む", "盗み", "クラック"),
    },
    "violence": {
        "en": ("poison", "kill", "murder", "hurt someone", "stalk", "launder", "scam",
               "fake passport", "counterfeit"),
        "fr": ("empoisonn", "tuer", "meurtre", "blanchir", "arnaque", "faux passeport"),
        "es": ("envenen", "matar", "asesin", "blanquear", "estafa", "pasaporte falso"),
        "de": ("vergift", "töten", "ermorden", "geldwäsche", "betrug", "falschen pass"),
        "it": ("avvelen", "uccidere", "omicidio", "riciclare", "truffa", "passaporto falso"),
        "pt": ("envenen", "matar", "assassin", "lavar dinheiro", "golpe", "passaporte falso"),
        "nl": ("vergiftig", "doden", "vermoorden", "witwassen", "oplichting", "vals paspoort"),
        "ru": ("отрав", "убить", "убийств", "отмыть", "мошенничеств", "поддельн"),
        "zh": ("毒死", "下毒", "杀人", "谋杀", "洗钱", "诈骗", "假护照"),
        "ja": ("毒殺", "殺す", "殺し", "毒を", "マネーロンダリング", "詐欺", "偽造"),
    },
    "howto": {
        "en": ("how to make", "how to build", "instructions to", "recipe for", "how to cook",
               "how to synthesize", "the steps to"),
        "fr": ("comment fabriquer", "comment faire", "recette", "comment créer"),
        "es": ("cómo fabricar", "cómo hacer", "receta", "cómo crear"),
        "de": ("wie man", "anleitung", "rezept", "herstellen"),
        "it": ("come fabbricare", "come fare", "ricetta", "come creare"),
        "pt": ("como fabricar", "como fazer", "receita", "como criar"),
        "nl": ("hoe maak", "hoe je", "recept", "maken"),
        "ru": ("как сделать", "как изготовить", "рецепт", "как создать"),
        "zh": ("如何制造", "制作方法", "怎么做", "怎么制作", "如何制作", "做法"),
        "ja": ("作り方", "方法", "作る"),
    },
    # Benign vocabulary -----------------------------------------------------------------
    "code": {
        "en": ("python", "git", "linux", "code", "function", "list", "string", "file", "folder",
               "variable", "loop", "class", "module", "database", "sql", "docker", "tuple"),
        "fr": ("python", "git", "linux", "code", "fonction", "liste", "chaîne", "fichier",
               "dossier", "variable", "boucle", "base de données", "tuple"),
        "es": ("python", "git", "linux", "código", "función", "lista", "cadena", "archivo",
               "carpeta", "variable", "bucle", "base de datos", "tupla"),
        "de": ("python", "git", "linux", "code", "funktion", "liste", "zeichenkette", "datei",
               "ordner", "variable", "schleife", "datenbank", "tupel"),
        "it": ("python", "git", "linux", "codice", "funzione", "lista", "stringa", "file",
               "cartella", "variabile", "ciclo", "database", "tupla"),
        "pt": ("python", "git", "linux", "código", "função", "lista", "string", "arquivo",
               "ficheiro", "pasta", "variável", "laço", "banco de dados", "tupla"),
        "nl": ("python", "git", "linux", "code", "functie", "lijst", "tekenreeks", "bestand",
               r"map\b", "variabele", r"lus\b", "database", "tuple"),
        "ru": ("python", "git", "linux", "код", "функци", "список", "строк", "файл", "папк",
               "переменн", "цикл", "баз\\w* данных", "кортеж"),
        "zh": ("python", "git", "linux", "代码", "函数", "列表", "字符串", "文件", "文件夹",
               "变量", "循环", "数据库", "元组"),
        "ja": ("python", "git", "linux", "コード", "関数", "リスト", "文字列", "ファイル",
               "フォルダ", "変数", "ループ", "データベース", "タプル"),
    },
    "question": {
        "en": ("how do i", "how can i", "what is", "what's", "what are", "why does", "why is",
               "difference between", "explain", "can you help", "what does"),
        "fr": ("comment", "qu'est-ce", "quelle est", "quel est", "quelles sont", "pourquoi",
               "différence", "explique", "peux-tu m'aider"),
        "es": ("cómo", "qué es", "cuál es", "cuáles son", "por qué", "diferencia", "explica",
               "me ayudas"),
        "de": ("wie ", "was ist", "was bedeutet", "welche", "warum", "unterschied", "erklär",
               "kannst du mir helfen"),
        "it": ("come ", "cos'è", "che cos", "qual è", "quali sono", "perché", "differenza",
               "spiega", "mi aiuti"),
        "pt": ("como ", "o que é", "qual é", "quais são", "por que", "porque", "diferença",
               "explica", "me ajuda"),
        "nl": ("hoe ", "wat is", "wat zijn", "welke", "waarom", "verschil", "leg uit",
               "kun je me helpen"),
        "ru": ("как ", "что такое", "какой", "какие", "почему", "разниц", "чем отличается",
               "объясни", "помоги"),
        "zh": ("如何", "怎么", "怎样", "什么是", "区别", "为什么", "是什么", "解释", "帮我", "吗",
               "呢", "哪些", "什么", "请问"),
        "ja": ("どうやって", "どうすれば", "とは", "違い", "なぜ", "何ですか", "説明して",
               "教えてください", "ますか", "ですか", "でしょうか", "どう", "何を", "方は"),
    },
    "answer": {
        "en": ("your answer", "your reply", "your response", "last answer", "previous answer",
               "last example", "last sentence", "that answer", "the list above", "the code above",
               "the steps above"),
        "fr": ("réponse", "dernier exemple", "dernière phrase", "la liste ci-dessus",
               "le code ci-dessus"),
        "es": ("respuesta", "último ejemplo", "última frase", "la lista de arriba",
               "el código de arriba"),
        "de": ("antwort", "letzte beispiel", "letzten satz", "die liste oben", "den code oben"),
        "it": ("risposta", "ultimo esempio", "ultima frase", "la lista sopra", "il codice sopra"),
        "pt": ("resposta", "último exemplo", "última frase", "a lista acima", "o código acima"),
        "nl": ("antwoord", "laatste voorbeeld", "laatste zin", "de lijst hierboven",
               "de code hierboven"),
        "ru": ("ответ", "последний пример", "последнее предложение", "список выше", "код выше"),
        "zh": ("回答", "答案", "回复", "上一个例子", "上面的列表", "上面的代码"),
        "ja": ("答え", "回答", "返事", "前の例", "上のリスト", "上のコード"),
    },
    "rephrase": {
        "en": ("shorter", "briefly", "more simply", "simpler", "in french", "in spanish",
               "in german", "in plain english", "summar", "sorted", "with comments"),
        "fr": ("plus court", "plus brièvement", "brièvement", "plus simplement", "en anglais",
               "résum"),
        "es": ("más corta", "más corto", "más breve", "brevemente", "más sencill", "en inglés",
               "resum"),
        "de": ("kürzer", "knapper", "einfacher", "auf englisch", "zusammenfass"),
        "it": ("più breve", "più corta", "brevemente", "più semplice", "in inglese", "riassum"),
        "pt": ("mais curta", "mais curto", "mais breve", "resumidamente", "mais simples",
               "em inglês", "resum"),
        "nl": ("korter", "beknopter", "eenvoudiger", "in het engels", "samenvat"),
        "ru": ("короче", "кратко", "проще", "по-английски", "на английском", "перескажи"),
        "zh": ("简短", "短一点", "简单一点", "用英语", "总结", "概括"),
        "ja": ("短く", "簡潔", "簡単に", "英語で", "要約", "まとめて"),
    },
    "helper": {
        "en": ("tour guide", "tutor", "teacher", "interviewer", "conversation partner",
               "reviewer", "mentor", "coach", "assistant for", "librarian"),
        "fr": ("guide touristique", "professeur", "tuteur", "partenaire de conversation",
               "guide", "prof"),
        "es": ("guía turístic", "profesor", "tutor", "compañero de conversación", "guía"),
        "de": ("reiseführer", "stadtführer", "lehrer", "tutor", "gesprächspartner",
               "fremdenführer"),
        "it": ("guida turistica", "insegnante", "tutor", "professore", "guida"),
        "pt": ("guia turístic", "professor", "tutor", "parceiro de conversa", "guia"),
        "nl": ("gids", "reisleider", "leraar", "docent", "gesprekspartner"),
        "ru": ("экскурсовод", "гид", "учител", "репетитор", "собеседник", "преподавател"),
        "zh": ("导游", "老师", "家教", "导师", "向导"),
        "ja": ("観光ガイド", "ガイド", "先生", "家庭教師", "講師", "案内"),
    },
    "typo": {
        "en": ("typo", "spelling mistake", "misspel", "i meant"),
        "fr": ("faute de frappe", "coquille", "je voulais dire"),
        "es": ("errata", "error tipográfico", "quería decir", "quise decir"),
        "de": ("tippfehler", "schreibfehler", "ich meinte", "ich wollte"),
        "it": ("refuso", "errore di battitura", "volevo dire", "intendevo"),
        "pt": ("erro de digitação", "gralha", "queria dizer", "quis dizer"),
        "nl": ("typfout", "tikfout", "ik bedoelde", "ik wilde"),
        "ru": ("опечатк", "я имел в виду", "я имела в виду", "хотел сказать", "хотела сказать"),
        "zh": ("错别字", "打错", "笔误", "我是说", "我的意思是"),
        "ja": ("誤字", "タイプミス", "打ち間違い", "言いたかった", "のつもり"),
    },
    "everyday": {
        "en": ("recipe", "travel", "poem", "weather", "garden", "birthday", "holiday", "book",
               "music", "sport", "cook", "history", "health", "money", "city", "train"),
        "fr": ("recette", "voyage", "poème", "météo", "jardin", "anniversaire", "vacances",
               "livre", "musique", "cuisine", "ville", "train", "randonnée"),
        "es": ("receta", "viaje", "poema", "tiempo", "jardín", "cumpleaños", "vacaciones",
               "libro", "música", "cocina", "ciudad", "tren", "excursión"),
        "de": ("rezept", "reise", "gedicht", "wetter", "garten", "geburtstag", "urlaub", "buch",
               "musik", "küche", "stadt", "zug", "wanderung"),
        "it": ("ricetta", "viaggio", "poesia", "meteo", "giardino", "compleanno", "vacanz",
               "libro", "musica", "cucina", "città", "treno", "escursione"),
        "pt": ("receita", "viagem", "poema", "clima", "jardim", "aniversário", "férias", "livro",
               "música", "cozinha", "cidade", "comboio", "trem", "caminhada"),
        "nl": ("recept", "reis", "gedicht", "weer", "tuin", "verjaardag", "vakantie", "boek",
               "muziek", "keuken", "stad", "trein", "wandel"),
        "ru": ("рецепт", "путешеств", "стих", "погод", "сад", "день рождения", "отпуск", "книг",
               "музык", "кухн", "город", "поезд", "поход"),
        "zh": ("食谱", "旅行", "诗", "天气", "花园", "生日", "假期", "书", "音乐", "做饭", "城市",
               "火车", "徒步"),
        "ja": ("レシピ", "旅行", "詩", "天気", "庭", "誕生日", "休暇", "本", "音楽", "料理", "都市",
               "電車", "ハイキング"),
    },
}
# fmt: on

_META = set(".^$*+?{}[]\\|()")


def _is_cjk(form: str) -> bool:
    return any("\u2e80" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" for c in form)


def _trie(forms: list[str]) -> str:
    """A regular expression matching any of the literal forms, as a trie: at each position
    the engine tries one branch per distinct next character instead of every form, which
    is what keeps the lexicon in microseconds; longer forms are preferred."""
    root: dict = {}
    for form in forms:
        node = root
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


@cache
def _matcher() -> tuple[re.Pattern[str], dict[str, tuple[str, ...]]]:
    """One pattern for the whole lexicon and the concepts of each literal form: literal
    stems (Latin and Cyrillic, at a word start) and literal Chinese or Japanese forms in
    two tries, whose match is looked up; the few forms that need regular-expression syntax
    in a named group per concept, behind the same word-start test when they begin with a
    letter, so that most positions of a text are rejected by one look-behind."""
    concepts_of: dict[str, list[str]] = {}
    at_word: dict[str, list[str]] = {}
    anywhere: dict[str, list[str]] = {}
    for concept, by_language in LEXICON.items():
        for forms in by_language.values():
            for form in forms:
                if _META & set(form):
                    special = at_word if form[0].isalpha() else anywhere
                    special.setdefault(concept, []).append(form)
                elif concept not in concepts_of.setdefault(form, []):
                    concepts_of[form].append(concept)
    latin = [f for f in concepts_of if not _is_cjk(f)]
    cjk = [f for f in concepts_of if _is_cjk(f)]
    gated = [f"(?P<{c}_w>{'|'.join(forms)})" for c, forms in at_word.items()]
    if latin:
        gated.insert(0, "(?P<latin>" + _trie(latin) + r")\w*")
    parts = [r"(?<!\w)(?:" + "|".join(gated) + ")"] if gated else []
    if cjk:
        parts.append("(?=[\u2e80-\u9fff])(?P<cjk>" + _trie(cjk) + ")")
    parts += [f"(?P<{c}>{'|'.join(forms)})" for c, forms in anywhere.items()]
    pattern = re.compile("|".join(parts) or r"(?!)", re.MULTILINE)
    return pattern, {form: tuple(c) for form, c in concepts_of.items()}


def concept_tokens(text: str) -> list[str]:
    """The concepts the text mentions, in order, as `cx<concept>` words."""
    pattern, concepts_of = _matcher()
    out = []
    for match in pattern.finditer(text.casefold()):
        group = match.lastgroup
        if group in ("latin", "cjk"):
            out += ["cx" + c for c in concepts_of[match.group(group)]]
        else:
            out.append("cx" + group.removesuffix("_w"))
    return out


def annotate(text: str) -> str:
    """The text followed by its concept words on a line of their own."""
    return text + "\n" + " ".join(concept_tokens(text))


LEXICON_VERSION = hashlib.sha256(json.dumps(LEXICON, sort_keys=True).encode()).hexdigest()[:12]
