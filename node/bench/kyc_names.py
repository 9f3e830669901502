"""Synthetic persons and organisations for ``kpnet bench kyc``: names of the regions the
taskforces work in, combined at random. Each list holds common given names, surnames and
words; combinations designate no real person or company.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# -- given names ---------------------------------------------------------------------------
FRENCH_GIVEN = (
    "Jean", "Pierre", "Paul", "Marie", "Claire", "Joseph", "Jacques", "André", "Michel",
    "François", "Emmanuel", "Patrice", "Thérèse", "Odette", "Blaise", "Clémentine", "Aimé",
    "Joséphine", "Dieudonné", "Prosper", "Honoré", "Béatrice", "Serge", "Apollinaire",
    "Chantal", "Faustin", "Yolande", "Adèle", "Zacharie", "Rosalie", "Évariste", "Innocent",
    "Célestine", "Gaston", "Hervé", "Sylvain", "Bienvenu", "Fidèle", "Gervais", "Théodore",
    "Armel", "Brice", "Cyrille", "Didier", "Edgard", "Firmin", "Guy", "Hilaire", "Ignace",
    "Jules", "Léon", "Martial", "Noël", "Octave", "Parfait", "Raphaël", "Sébastien",
    "Timothée", "Urbain", "Valentin", "Xavier", "Yves", "Albertine", "Bernadette",
    "Cécile", "Delphine", "Élise", "Florence", "Georgette", "Henriette", "Irène",
    "Juliette", "Laurentine", "Madeleine", "Nathalie", "Pélagie", "Rachel", "Solange",
    "Véronique", "Angèle", "Benjamin", "Christophe", "Désiré", "Eugène", "Félicien",
)
CONGOLESE_GIVEN = (
    "Fiston", "Héritier", "Grâce", "Ngalula", "Mbuyi", "Kalala", "Ilunga", "Kabila",
    "Mutombo", "Nsimba", "Kiese", "Mbombo", "Tshala", "Ndaya", "Kapinga", "Mujinga",
    "Lukusa", "Kanku", "Musau", "Mwamba", "Banza", "Kasongo", "Kitenge", "Mulumba",
    "Bijou", "Merveille", "Exaucé", "Dorcas", "Gloire", "Trésor", "Christelle", "Plamedi",
)
WEST_GIVEN = (
    "Mamadou", "Lamine", "Aminata", "Fanta", "Sekou", "Moussa", "Kadiatou", "Alpha",
    "Ousmane", "Mariama", "Bintou", "Sory", "Tidiane", "Abdoulaye", "Fatoumata", "Sidiki",
    "Kandia", "Nènè", "Boubacar", "Djénéba", "Kwame", "Kofi", "Ama", "Yaw", "Akua",
    "Adjoa", "Koffi", "Yao", "Amenan", "Konan", "Aya", "Momodou", "Foday", "Sahr", "Tamba",
    "Fatmata", "Isatu", "Mohamed", "Ibrahim", "Alieu",
)
ARABIC_GIVEN = (  # spelled as Chadian, Sudanese and Sahelian registries write them
    "Mahamat", "Mohamed", "Mohammed", "Ahmat", "Ahmed", "Abakar", "Abdallah", "Abdoulaye",
    "Adoum", "Hissein", "Hassan", "Haroun", "Issa", "Ismaël", "Idriss", "Oumar", "Ousmane",
    "Youssouf", "Yacoub", "Souleymane", "Brahim", "Ibrahim", "Moussa", "Ali", "Saleh",
    "Bichara", "Djibril", "Khalil", "Nour", "Zakaria", "Hamid", "Mahmoud", "Moustapha",
    "Abderahim", "Abdelkerim", "Achta", "Fatimé", "Khadidja", "Zenaba", "Hawa", "Mariam",
    "Halimé", "Amina", "Aïcha", "Zara",
)
PORTUGUESE_GIVEN = (
    "João", "José", "António", "Manuel", "Domingos", "Francisco", "Adelino", "Fernando",
    "Isabel", "Teresa", "Joaquim", "Mateus", "Lourenço", "Helena", "Luzia", "Esperança",
)
# -- surnames --------------------------------------------------------------------------------
CENTRAL_SURNAMES = (
    "Yakité", "Ngaïkoisset", "Yangouanda", "Zoumandé", "Koyassambia", "Ndakala", "Ouamba",
    "Gbazalé", "Nzapayéké", "Féïkéram", "Ngouandjika", "Kolingba", "Dologuélé", "Sarandji",
    "Gbaguili", "Ngrébada", "Doumta", "Yakoma", "Mbanza", "Sélébangue", "Ngakola",
    "Wanzé", "Kossi", "Gbadin", "Ouadda", "Pounoukou", "Bozizé", "Ngaïndiro", "Yapende",
    "Zanga", "Kpéma", "Mandaba", "Gouandja", "Dondra", "Bétinga", "Ngoulou", "Kembé",
    "Essomba", "Ngono", "Abéga", "Mvondo", "Bebey", "Atangana", "Mbarga", "Ondoa",
    "Owona", "Nkoulou", "Eto'o", "Fouda", "Tchatchoua", "Nguema", "Obiang", "Ondo",
    "Mba", "Ndong", "Moussavou", "Nzé", "Mabiala", "Makosso", "Mouanda", "Nkounkou",
    "Moukoko", "Bakala", "Loubaki", "Ngolo", "Tsimba", "Samba", "Bongo", "Ekomi", "Djimi",
    "Tchakounté", "Kamga", "Fotso", "Nganou", "Tchoupo", "Djomo", "Wandji", "Kouam",
    "Nana", "Tchuente", "Simo", "Ngassa", "Feudjio", "Kenmogne", "Tagne",
)
CONGOLESE_SURNAMES = (
    "Kalonji", "Tshibangu", "Mukendi", "Kabongo", "Ngoy", "Mbaya", "Kapinga", "Lukusa",
    "Tshiamala", "Ndongala", "Mbala", "Ilunga", "Kasongo", "Mutombo", "Tshisekedi",
    "Kabamba", "Kazadi", "Mulumba", "Nzuzi", "Makiese", "Lumbala", "Kabeya", "Tshilombo",
    "Katumba", "Mwanza", "Banza", "Mbuyi", "Kanyinda", "Tshimanga", "Mpoyi", "Ntumba",
    "Kasanda", "Kalambay", "Ngandu", "Bukasa", "Kayembe", "Muamba", "Tshiyombo", "Nkulu",
    "Mayala", "Lusamba", "Kitoko", "Nsimba", "Lutete", "Mabika", "Kinkela", "Luzolo",
    "Ekanga", "Bokele", "Lokondo", "Bolamba", "Likunde", "Mongala", "Bosenge", "Mbokani",
    "Kanku", "Kamwanya", "Mukuna", "Tshitenge", "Ngalula", "Kabasele", "Kanda",
)
WEST_SURNAMES = (
    "Diallo", "Traoré", "Koné", "Coulibaly", "Camara", "Keïta", "Sylla", "Touré", "Bah",
    "Barry", "Sow", "Condé", "Kourouma", "Doumbouya", "Cissé", "Fofana", "Kamara", "Sesay",
    "Koroma", "Bangura", "Conteh", "Mansaray", "Kargbo", "Turay", "Jalloh", "Kallon",
    "Johnson", "Taylor", "Sirleaf", "Weah", "Doe", "Kpoto", "Gbowee", "Ouattara", "Kouassi",
    "Kouamé", "Yao", "N'Guessan", "Konan", "Bamba", "Soro", "Gbagbo", "Ouédraogo", "Sawadogo",
)
ARABIC_SURNAMES = (
    "Abakar", "Mahamat", "Adoum", "Hissein", "Haroun", "Issa", "Abdallah", "Bichara",
    "Annour", "Djibrine", "Seid", "Tahir", "Idriss", "Ousmane", "Moussa", "Ahmat",
    "Youssouf", "Saleh", "Brahim", "Oumar", "Hassaballah", "Abdelkerim", "Zakaria",
    "Adam", "Nouri", "Kebir", "Béchir", "Faki", "Mahamoud", "Ali", "Taha", "Ismaïl",
)
PORTUGUESE_SURNAMES = (
    "Cassoma", "Muacassange", "Sapalo", "Chipenda", "Kiala", "Lukamba", "Chivukuvuku",
    "Samakuva", "Dos Santos", "Da Silva", "Neto", "Van-Dúnem", "Lourenço", "Kassoma",
    "Tchiwale", "Kapiñala", "Sassoma", "Ngola",
)
# -- places and words for organisations ------------------------------------------------------
TOWNS = (
    "Bria", "Sam Ouandja", "Ouadda", "Berbérati", "Carnot", "Gamboula", "Nola", "Bayanga",
    "Mbaïki", "Boda", "Bangui", "Bossangoa", "Tshikapa", "Mbuji-Mayi", "Kananga", "Kisangani",
    "Kinshasa", "Lubumbashi", "Batouri", "Yokadouma", "Bertoua", "Garoua-Boulaï",
    "Ngaoundéré", "Yaoundé", "Douala", "Dundo", "Lucapa", "Saurimo", "Luanda",
    "Kenema", "Koidu", "Freetown", "Banankoro", "Conakry", "Séguéla", "Tortiya",
    "Ndjamena", "Abéché", "Moundou", "Ouesso", "Brazzaville", "Makoua", "Franceville",
)
WORDS = (
    "Étoile", "Lumière", "Espoir", "Avenir", "Source", "Soleil", "Horizon", "Colombe",
    "Grâce", "Victoire", "Paix", "Unité", "Progrès", "Renouveau", "Confiance", "Harmonie",
    "Diamant Bleu", "Pierre Précieuse", "Rivière", "Saphir", "Cristal", "Aurore",
)
SECTORS = ("Diamants", "Gemmes", "Mining", "Négoce", "Export", "Trading", "Minerals")
LEGAL_FORMS = ("SARL", "SA", "SARLU", "Ltd", "SPRL", "SAS", "GIE", "LLC", "Inc", "")
ORG_TEMPLATES = (  # each with a surname and two more varying words (names repeat little)
    "Comptoir {S} {W} de {T} {LF}", "Établissements {S} {S2} de {T}",
    "Ets {S} et Fils {Sec} {T}", "{S} {Sec} {T} {LF}", "Société Minière {W} {S} de {T} {LF}",
    "{T} {W} {Sec} {S} {LF}", "Bureau d'Achat {S} {S2} {T}", "{S} {S2} {Sec} {LF}",
    "Coopérative Minière {W} {S} de {T}", "{S} & Cie {Sec} {T}", "Groupe {S} {W} {Sec} {LF}",
    "{W} {Sec} {S} {T} {LF}", "{S} {S2} Mining Company {T} Ltd",
)
ALL_SURNAMES = (CENTRAL_SURNAMES + CONGOLESE_SURNAMES + WEST_SURNAMES + ARABIC_SURNAMES
                + PORTUGUESE_SURNAMES)
# -- more surnames, built from syllables of each region's names --------------------------------
SYLLABLES = {  # origin -> (beginnings, middles, endings)
    "central": (
        ("Nga", "Ngoua", "Yan", "Zou", "Koy", "Nda", "Gba", "Oua", "Nza", "Fé", "Kpé", "Bé",
         "Do", "Sé", "Wa", "Ya", "Bo", "Ma", "Gou", "Ko", "Mbo", "Da", "Zan", "Ngué", "Ess",
         "Ate", "Tcha", "Fo", "Kam", "Ow", "Eb", "Nkou", "Tchou", "Dj", "Ke", "Ta"),
        ("ï", "ko", "ga", "ssa", "ma", "ndé", "pa", "ye", "lé", "ra", "ba", "ndji", "zo", "di",
         "kou", "la", "o", "ou", "on", "an", ""),
        ("koisset", "ouanda", "mbia", "kala", "mba", "zalé", "kéké", "ndé", "ra", "ngui",
         "kia", "ndo", "ssé", "da", "nga", "ka", "gne", "tsa", "ngo", "té", "po", "mo", "dji",
         "lla", "ssi"),
    ),
    "congolese": (
        ("Ka", "Tshi", "Mu", "Ngo", "Ba", "Lu", "Mbu", "Ki", "Nku", "Ilu", "Ma", "Nsi", "Bo",
         "Lo", "Mwa", "Ntu", "Kase", "Nze", "Kapi", "Mbi", "Ndo", "Bule", "Ka", "Tshia"),
        ("la", "ba", "lo", "ke", "mba", "ngu", "ndi", "le", "ya", "si", "nga", "ku", "mbu",
         "ta", "nda", "mi", ""),
        ("nji", "ngu", "mba", "la", "ya", "ndi", "mbo", "shi", "ka", "nda", "lu", "ngi", "zi",
         "ke", "sa", "mbe", "nga", "mpe"),
    ),
    "west": (
        ("Kou", "N'Gue", "Ko", "Ya", "Ba", "So", "Dia", "Tra", "Ca", "Sy", "Fo", "Do", "Ke",
         "Sa", "Ja", "Ma", "Bo", "Gbo", "Kpo", "Ta", "Ou", "Se", "Ka", "Tou"),
        ("a", "ou", "i", "e", "o", "ro", "ma", "li", ""),
        ("ssi", "dio", "mé", "ra", "llo", "oré", "né", "mara", "fana", "ba", "ssan", "nan",
         "kou", "ma", "ray", "ssé", "bo", "gbe", "to", "lley", "ttara", "ndé"),
    ),
    "arabic": (
        ("Abdel", "Abder", "Hassab", "Nasr", "Nour", "Saif", "Ould", "Ben", "Ab", "Ha", "Ma",
         "Al", "Ta", "Bi"),
        ("", "a", "i", "ou", "el", "ed"),
        ("kerim", "rahim", "aziz", "salam", "wahid", "nasser", "hakim", "majid", "rahmane",
         "latif", "jalil", "moumine", "razak", "allah", "eddine", "dine", "kar", "mat", "bir",
         "chara", "roun", "san", "ssein"),
    ),
    "portuguese": (
        ("Ka", "Chi", "Sa", "Ngo", "Lu", "Mu", "Ki", "Ca", "Tchi", "Sapa", "Ndu", "Kapi",
         "Cha", "Sama", "Vi"),
        ("ssa", "pe", "ku", "lo", "mba", "nge", "ve", "nde", "co", ""),
        ("ma", "nda", "la", "vu", "mbo", "le", "ngo", "pi", "nga", "lo", "sso", "we"),
    ),
}


def syllable_surnames(origin: str) -> tuple[str, ...]:
    beginnings, middles, endings = SYLLABLES[origin]
    return tuple(dict.fromkeys(b + m + e for b in beginnings for m in middles for e in endings))


# -- who comes from where: (nationalities, given names, surnames, shape, weight) -------------
ORIGINS = (
    (("CF", "CM", "CG", "GA"), FRENCH_GIVEN, CENTRAL_SURNAMES, "central", 30),
    (("CD",), FRENCH_GIVEN + CONGOLESE_GIVEN, CONGOLESE_SURNAMES, "congolese", 25),
    (("CI", "GN", "SL", "LR", "ML", "BF"), WEST_GIVEN, WEST_SURNAMES, "west", 20),
    (("TD", "SD", "SS", "CF", "CM"), ARABIC_GIVEN, ARABIC_SURNAMES, "arabic", 17),
    (("AO",), PORTUGUESE_GIVEN, PORTUGUESE_SURNAMES, "portuguese", 8),
)
GENERATED_SURNAMES = {shape: syllable_surnames(shape) for *_, shape, _ in ORIGINS}
# (chance of a second given name, of a second surname: postnom, grandfather's name)
SHAPES = {"central": (0.45, 0.15), "congolese": (0.3, 0.7), "west": (0.6, 0.0),
          "arabic": (1.0, 0.4), "portuguese": (0.5, 0.5)}


@dataclass
class Party:
    """One synthetic person or organisation."""

    kind: str  # person | organisation
    names: list[str]
    aliases: list[str] = field(default_factory=list)
    date_of_birth: str | None = None
    nationality: str | None = None
    documents: list[str] = field(default_factory=list)
    origin: str = ""


def _date(rng: random.Random) -> str | None:
    roll = rng.random()
    year = rng.randint(1950, 2004)
    if roll < 0.05:
        return None
    if roll < 0.15:
        return str(year)
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _surname(rng: random.Random, listed: tuple[str, ...], shape: str) -> str:
    """Half from the list of common surnames, half built from syllables."""
    return rng.choice(listed if rng.random() < 0.5 else GENERATED_SURNAMES[shape])


def person(rng: random.Random) -> Party:
    nationalities, given, surnames, shape, _ = rng.choices(
        ORIGINS, weights=[o[4] for o in ORIGINS])[0]
    second_given, second_surname = SHAPES[shape]
    first = rng.choice(given)
    if shape in ("central", "congolese") and rng.random() < 0.2:
        first = f"{first}-{rng.choice(FRENCH_GIVEN)}"  # Jean-Pierre, Marie-Claire
    given_words = [first] + ([rng.choice(given)] if rng.random() < second_given else [])
    family = [_surname(rng, surnames, shape)]
    if rng.random() < second_surname:
        family.append(_surname(rng, surnames, shape))
    if rng.random() < 0.25:  # registries often write the surname first, in capitals
        words = [w.upper() for w in family] + given_words
    else:
        words = given_words + family
    nationality = rng.choice(nationalities)
    documents = []
    if rng.random() < 0.35:
        documents.append(f"{nationality}{rng.randrange(10**7):07d}")
    return Party("person", [" ".join(words)], date_of_birth=_date(rng), nationality=nationality,
                 documents=documents, origin=shape)


def organisation(rng: random.Random) -> Party:
    template = rng.choice(ORG_TEMPLATES)
    shape = rng.choice(list(GENERATED_SURNAMES))
    name = template.format(S=_surname(rng, ALL_SURNAMES, shape),
                           S2=_surname(rng, ALL_SURNAMES, shape),
                           T=rng.choice(TOWNS),
                           W=rng.choice(WORDS), Sec=rng.choice(SECTORS),
                           LF=rng.choice(LEGAL_FORMS))
    return Party("organisation", [" ".join(name.split())], origin="organisation")
