"""Benchmark of ``kpnet import licensees``: a synthetic file as a French-locale spreadsheet
saves it (BOM, ``;``, DD/MM/YYYY, French and English enum words, accents), written to disk
a row at a time, then imported into a fresh temporary node on SQLite through
``import_csv``, the function the command uses. It reports the import's speed and the
process's peak resident memory (the file is never held in memory, so the peak is the
import's).

Names are invented from common first names, surnames and places of the Central African
diamond fields; they designate no real person or company.
"""

from __future__ import annotations

import csv
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..bootstrap import init_node
from ..runtime import open_node, utc_now
from ..services.actors import Actor
from ..services.csv_format import LICENSEES
from ..services.csv_import import import_csv

REGIONS = {  # region -> (licence prefix, towns)
    "Haute-Kotto": ("CF", ("Bria", "Sam Ouandja", "Ouadda")),
    "Mambéré-Kadéï": ("CF", ("Berbérati", "Carnot", "Gamboula")),
    "Sangha-Mbaéré": ("CF", ("Nola", "Bayanga", "Salo")),
    "Lobaye": ("CF", ("Mbaïki", "Boda", "Boganda")),
    "Kasaï": ("CD", ("Tshikapa", "Kamonia", "Ilebo")),
    "Kasaï-Oriental": ("CD", ("Mbuji-Mayi", "Miabi", "Tshilenge")),
    "Kasaï-Central": ("CD", ("Kananga", "Luiza", "Demba")),
    "Est-Cameroun": ("CM", ("Batouri", "Yokadouma", "Kette")),
    "Lunda Norte": ("AO", ("Dundo", "Lucapa", "Cuango")),
    "Lunda Sul": ("AO", ("Saurimo", "Cacolo", "Muconda")),
}
FIRST_NAMES = (
    "Jean-Baptiste",
    "Marie-Claire",
    "Odette",
    "Fiston",
    "Blaise",
    "Clémentine",
    "Aimé",
    "Joséphine",
    "Thérèse",
    "Dieudonné",
    "Prosper",
    "Héritier",
    "Grâce",
    "Honoré",
    "Béatrice",
    "Serge",
    "Apollinaire",
    "Chantal",
    "Faustin",
    "Ngalula",
    "Mbuyi",
    "Ilunga",
    "Yolande",
    "Kalala",
    "Adèle",
    "Zacharie",
    "Rosalie",
    "Évariste",
    "Innocent",
    "Célestine",
)
SURNAMES = (
    "Yakité",
    "Ngaïkoisset",
    "Kalonji",
    "Tshibangu",
    "Mukendi",
    "Kabongo",
    "Ngoy",
    "Mbaya",
    "Yangouanda",
    "Zoumandé",
    "Koyassambia",
    "Ndakala",
    "Ouamba",
    "Gbazalé",
    "Mabiala",
    "Nzapayéké",
    "Essomba",
    "Ngono",
    "Abéga",
    "Mvondo",
    "Bebey",
    "Kapinga",
    "Lukusa",
    "Tshiamala",
    "Cassoma",
    "Muacassange",
    "Sapalo",
    "Chipenda",
    "Ndongala",
    "Féïkéram",
)
TYPES = {  # licence type -> (code, spellings a user might type)
    "buying_house": ("BA", ("comptoir", "Comptoir", "buying_house", "bureau d'achat")),
    "collector": ("CO", ("collecteur", "Collecteur", "collector")),
    "exporter": ("EX", ("exportateur", "Exportateur", "exporter")),
    "cooperative": ("CP", ("coopérative", "Coopérative", "cooperative")),
}
STATUSES = (("actif", 70), ("active", 15), ("suspendu", 6), ("révoqué", 4), ("expiré", 5))


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"


def _legal_name(rng: random.Random, licence_type: str, town: str, region: str) -> str:
    surname = rng.choice(SURNAMES)
    return rng.choice(
        {
            "buying_house": (
                f"Comptoir {surname} Diamants SARL",
                f"Société Minière de {town}",
                f"Bureau d'Achat {surname} et Fils",
                f"{town} Diamond Trading SARL",
            ),
            "collector": (_person(rng), f"Établissements {surname}", f"Collecte {surname} & Cie"),
            "exporter": (
                f"{surname} Export SA",
                f"Société d'Exportation de {town}",
                f"{town} Gems International SARL",
            ),
            "cooperative": (
                f"Coopérative Minière de {town}",
                f"Coopérative des Artisans Miniers de {region}",
            ),
        }[licence_type]
    )


def write_synthetic_licensees(out: TextIO, rows: int, *, seed: int = 2024) -> None:
    """``rows`` distinct licensees as a French-locale spreadsheet saves them, to ``out``
    (a text file opened with ``encoding="utf-8-sig", newline=""``)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    regions = list(REGIONS)
    statuses = [status for status, _ in STATUSES]
    weights = [weight for _, weight in STATUSES]
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(LICENSEES.column_names)
    for n in range(1, rows + 1):
        region = rng.choice(regions)
        prefix, towns = REGIONS[region]
        town = rng.choice(towns)
        licence_type = rng.choice(list(TYPES))
        code, spellings = TYPES[licence_type]
        issued_year = rng.randint(2012, 2025)
        issued = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{issued_year}"
        expires = f"{issued[:6]}{issued_year + rng.choice((2, 3, 5))}"
        writer.writerow(
            [
                f"{prefix}-{code}-{issued_year}-{n:06d}",
                rng.choice(spellings),
                _legal_name(rng, licence_type, town, region),
                "|".join(
                    f"{rng.choice(SURNAMES)} {w}"
                    for w in rng.sample(
                        ("Diamants", "Gemmes", "Négoce", "Mining"), rng.randint(0, 2)
                    )
                ),
                f"BP {rng.randint(1, 999)}, quartier {rng.choice(SURNAMES)}, {town}",
                region,
                issued,
                expires,
                rng.choices(statuses, weights)[0],
                rng.choice(("", "", "", "amber", "GREEN")),
                "|".join(_person(rng) for _ in range(rng.randint(1, 3))),
                "|".join(_person(rng) for _ in range(rng.randint(0, 2))),
            ]
        )


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak * (1 if sys.platform == "darwin" else 1024) / 1e6, 1)


def run_import_bench(
    rows: int = 100_000, *, seed: int = 2024, echo: Callable[[str], None] = lambda _: None
) -> dict[str, float | int]:
    """Import ``rows`` synthetic licensees into a new temporary node; time it."""
    with tempfile.TemporaryDirectory(prefix="kpnet-bench-") as tmp:
        settings = init_node(
            Path(tmp) / "node",
            node_id="CF",
            name="Benchmark node",
            url="http://127.0.0.1:8100",
            now=utc_now(),
        )
        started = time.perf_counter()
        path = Path(tmp) / "licensees.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            write_synthetic_licensees(out, rows, seed=seed)
        echo(
            f"generated {rows} rows ({path.stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        node = open_node(settings)
        try:
            started = time.perf_counter()
            with path.open("rb") as source:
                report = import_csv(
                    node.sessions,
                    "licensees",
                    source,
                    actor=Actor("bench", "analyst"),
                    now=node.now(),
                )
            seconds = time.perf_counter() - started
        finally:
            node.close()
    if report.written != rows:
        first = report.errors[0] if report.errors else None
        raise RuntimeError(f"benchmark import wrote {report.written} of {rows} rows: {first}")
    peak = peak_rss_mb()
    echo(f"validated, written and committed in {seconds:.1f} s; peak RSS {peak} MB")
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": peak,
    }
