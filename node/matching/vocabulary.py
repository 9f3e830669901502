"""Word lists the normaliser uses: titles, organisation legal forms, particles, common
Arabic-script names and the spelling variants of Arabic-origin names.

Everything here is lower-case ASCII as ``normalise`` produces it (after transliteration),
except the keys of ``ARABIC_SCRIPT_NAMES``, which are Arabic script. Lists, not
rules, because officers type these words in many ways and each way is a fact to keep.
"""

from __future__ import annotations

# Titles and honorifics, dropped from the front and the end of person names (kept aside
# in ``titles``); inside a name the same word may be a name ("Major", "Chef").
TITLES = frozenset({
    "m", "mr", "mrs", "ms", "mme", "mmes", "mlle", "mlles", "monsieur", "madame",
    "mademoiselle", "messrs", "sir", "dame", "lady", "lord",
    "dr", "docteur", "doctor", "pr", "prof", "professeur", "professor", "me", "maitre",
    "ing", "ir", "hon", "honorable", "honourable", "excellence", "exc", "son", "sem",
    "col", "colonel", "lt", "lieutenant", "ltcol", "cdt", "commandant", "capt", "capitaine",
    "captain", "sgt", "sergent", "adj", "adjudant", "gen", "general", "gal", "generale",
    "maj", "major", "cpl", "caporal", "brig", "brigadier", "amiral", "marechal",
    "insp", "inspecteur", "comm", "commissaire", "prefet", "sous-prefet", "chef",
    "chief", "mgr", "monseigneur", "abbe", "pere", "soeur", "pasteur", "rev", "reverend",
    "imam", "cheikh", "sheikh", "shaykh", "cheick", "sultan", "lamido", "lamibe",
    "alhaji", "alhadji", "alhaj", "alhajj", "elhadj", "elhadji", "elhaj", "hadj",
    "hadji", "hajj", "haji", "hadja", "hadjia", "hajia", "alhaja",
})
# Two-word titles, matched before the single words ("El Hadj", "Al Hajji").
TITLE_PAIRS = frozenset({
    ("el", "hadj"), ("el", "hadji"), ("el", "haj"), ("al", "hadj"), ("al", "haji"),
    ("al", "hajj"), ("al", "hadji"), ("el", "hajj"), ("son", "excellence"),
    ("lt", "col"), ("sous", "prefet"),
})

# Legal forms of organisations, dropped from names for matching (kept in ``legal_forms``).
LEGAL_FORMS = frozenset({
    "sarl", "sarlu", "sa", "sas", "sasu", "sprl", "sprlu", "scs", "snc", "sca", "scrl",
    "gie", "ets", "etablissement", "etablissements", "ste", "cie", "compagnie", "co",
    "company", "ltd", "limited", "llc", "llp", "inc", "incorporated", "corp",
    "corporation", "plc", "gmbh", "bv", "nv", "ag", "pty", "lda", "limitada", "scoop",
    "scoops", "scoopca", "coopca", "ei", "eurl", "fze", "fzco", "dmcc",
})
# Small words that carry no identity: kept in the compared text, never used as keys.
PARTICLES = frozenset({
    "de", "du", "des", "la", "le", "les", "l", "d", "et", "and", "of", "the", "y",
    "da", "do", "dos", "das", "di", "van", "von", "der", "den", "bin", "ould", "al", "el",
    "a", "en", "pour", "for", "&",
})
# Spelling normalisation of common abbreviations in organisation names.
ORGANISATION_WORDS = {
    "intl": "international", "coop": "cooperative",
    "st": "saint", "sce": "societe", "soc": "societe",
    "dmd": "diamond", "diam": "diamants",
}

# Spelling variants of Arabic-origin names as written in French, English and
# Portuguese, each mapped to one canonical spelling.
_VARIANT_GROUPS = {
    "muhammad": "mohamed mohammed mohammad mohamad muhamad muhammed muhamed mouhamed "
                "mouhamad mouhammad mohamet mahamat mahammat mohamud mouhammed mohammedou "
                "mhmd",
    "ahmad": "ahmed ahmat ahmet ahmadou amadou hamadou ahmadu",
    "mahmud": "mahmoud mahamoud mahmood mahamud",
    "mustafa": "moustapha mustapha moustafa mostafa mustafaa",
    "abdallah": "abdullah abdoulah abdoulaye abdullahi abdallahi abdellah abdalla "
                "abdoulla abdulahi",
    "abdulrahman": "abdourahmane abderrahmane abdelrahman abdurrahman abdourahman "
                   "abdoulrahmane abderahmane",
    "abdulaziz": "abdelaziz abdoulaziz",
    "abdulkarim": "abdelkarim abdoulkarim abdoul-karim",
    "abdulkadir": "abdelkader abdoulkader abdulkader abdoulkadri abdelkadir",
    "ibrahim": "ibrahima brahim ebrahim ibrahime",
    "ismail": "ismael ismaila ismaeel",
    "musa": "moussa mousa moosa mussa",
    "isa": "issa",
    "yusuf": "youssouf yousouf youssef yusef yousef yousuf yussuf youssoufa yousseph",
    "yaqub": "yacoub yakoub yacouba yaqoub yakubu yaqoob yakub",
    "umar": "omar oumar omer umaru oumarou omarou",
    "uthman": "ousmane osman othman usman outhman usmane ousman othmane",
    "ali": "aly",
    "hasan": "hassan hassane hasane",
    "husayn": "hussein houssein hussain husain hossein houssain husseini",
    "idris": "idriss idrissa driss",
    "sulayman": "souleymane souleyman suleiman sulaiman soulemane souleimane suleyman "
                "sulemana soulaymane",
    "abubakar": "aboubakar aboubacar abubakr aboubakr boubacar aboubakary abubakari "
                "boubakar abakar",
    "adam": "adamou adama",
    "khalid": "khaled",
    "salih": "saleh salihou",
    "fatima": "fatouma fatoumata fatma fatimata fatime fatimatou",
    "aisha": "aicha aissatou aichatou ayesha aisatou aishatu",
    "khadija": "khadidja kadidja khadidiatou kadidiatou khadidia",
    "zaynab": "zeinab zainab zenab zeynab",
    "maryam": "mariam mariama meryem maryama",
    "hawa": "haoua hawaou",
    "amina": "aminata aminatou",
    "halima": "halimatou",
    "jibril": "djibril jibrin djibrine djibrila",
    "dawud": "daoud daouda dawood daud",
    "harun": "haroun harouna",
    "zakariya": "zakaria zakariya zacharia zakari",
    "yahya": "yaya yahia yahaya",
    "hamid": "hamed hamidou",
    "nur": "nour",
    "abdul": "abdel abdoul",
}
NAME_VARIANTS = {
    variant: canonical
    for canonical, variants in _VARIANT_GROUPS.items()
    for variant in variants.split()
}

# Common names in Arabic script, transliterated whole: letter-by-letter
# transliteration drops the short vowels (محمد would become "mhmd").
ARABIC_SCRIPT_NAMES = {
    "محمد": "muhammad", "احمد": "ahmad", "محمود": "mahmud", "مصطفى": "mustafa",
    "عبد الله": "abdallah", "عبدالله": "abdallah", "عبد الرحمن": "abdulrahman",
    "عبدالرحمن": "abdulrahman", "عبد العزيز": "abdulaziz", "عبدالعزيز": "abdulaziz",
    "عبد القادر": "abdulkadir", "عبدالقادر": "abdulkadir", "عبد الكريم": "abdulkarim",
    "ابراهيم": "ibrahim", "اسماعيل": "ismail", "موسى": "musa", "عيسى": "isa",
    "يوسف": "yusuf", "يعقوب": "yaqub", "عمر": "umar", "عثمان": "uthman", "علي": "ali",
    "حسن": "hasan", "حسين": "husayn", "ادريس": "idris", "سليمان": "sulayman",
    "ابو بكر": "abubakar", "ابوبكر": "abubakar", "ابكر": "abubakar", "آدم": "adam",
    "ادم": "adam", "خالد": "khalid", "صالح": "salih", "فاطمة": "fatima",
    "عائشة": "aisha", "خديجة": "khadija", "زينب": "zaynab", "مريم": "maryam",
    "حواء": "hawa", "امينة": "amina", "حليمة": "halima", "جبريل": "jibril",
    "داود": "dawud", "هارون": "harun", "زكريا": "zakariya", "يحيى": "yahya",
    "حامد": "hamid", "نور": "nur", "بن": "bin", "ابن": "bin", "ولد": "ould",
    "الحاج": "alhaji", "الحاجة": "hadja", "الشيخ": "cheikh",
}
