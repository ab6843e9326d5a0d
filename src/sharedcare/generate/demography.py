"""Who lives in the region: age/sex structure, ethnic groups, names and places, all as small made-up tables.

The shapes follow England (ONS mid-year estimates for age and sex, Census 2021 for ethnic groups); the names are
common English first names and surnames of the kind found in any town; towns and streets are invented.
"""

from __future__ import annotations

from dataclasses import dataclass

# fmt: off
# Share of the population by 5-year age band 0-4 ... 90+ (England, percent), the oldest bands raised by the
# deaths of the three years before the reference date so the living population keeps the English shape.
AGE_BANDS_5Y: tuple[float, ...] = (
    5.4, 5.9, 6.0, 5.6, 6.0, 6.6, 6.9, 6.7, 6.3, 6.4, 6.9, 6.7, 5.9, 5.0, 5.3, 3.9, 2.9, 2.0, 1.5,
)
# Share female by 5-year band: more women at older ages.
FEMALE_SHARE_5Y: tuple[float, ...] = (
    0.488, 0.488, 0.488, 0.487, 0.493, 0.502, 0.505, 0.506, 0.506, 0.508, 0.508, 0.508, 0.511, 0.518,
    0.527, 0.545, 0.566, 0.604, 0.690,
)
# fmt: on


@dataclass(frozen=True, slots=True)
class EthnicGroup:
    code: str  # NHS Data Dictionary ethnic category (UKCore-EthnicCategoryEngland)
    display: str
    share: float  # percent of England, Census 2021
    urban: float  # multiplier in deprived urban areas, relative to rural ones
    names: str  # which name pool the person's names come from


# fmt: off
ETHNIC_GROUPS: tuple[EthnicGroup, ...] = (
    EthnicGroup("A", "White - British", 73.5, 0.8, "english"),
    EthnicGroup("B", "White - Irish", 0.9, 1.0, "irish"),
    EthnicGroup("C", "White - Any other White background", 6.4, 1.6, "european"),
    EthnicGroup("D", "Mixed - White and Black Caribbean", 0.9, 2.0, "english"),
    EthnicGroup("E", "Mixed - White and Black African", 0.5, 2.0, "english"),
    EthnicGroup("F", "Mixed - White and Asian", 0.8, 1.8, "english"),
    EthnicGroup("G", "Mixed - Any other mixed background", 0.8, 1.8, "english"),
    EthnicGroup("H", "Asian or Asian British - Indian", 3.3, 2.5, "south_asian"),
    EthnicGroup("J", "Asian or Asian British - Pakistani", 2.7, 3.0, "south_asian"),
    EthnicGroup("K", "Asian or Asian British - Bangladeshi", 1.1, 3.0, "south_asian"),
    EthnicGroup("L", "Asian or Asian British - Any other Asian background", 1.6, 2.2, "south_asian"),
    EthnicGroup("M", "Black or Black British - Caribbean", 1.1, 2.8, "english"),
    EthnicGroup("N", "Black or Black British - African", 2.6, 2.8, "african"),
    EthnicGroup("P", "Black or Black British - Any other Black background", 0.5, 2.8, "african"),
    EthnicGroup("R", "Other Ethnic Groups - Chinese", 0.8, 2.0, "chinese"),
    EthnicGroup("S", "Other Ethnic Groups - Any other ethnic group", 1.6, 2.2, "european"),
    EthnicGroup("Z", "Not stated", 0.9, 1.0, "english"),
)
SOUTH_ASIAN = frozenset("HJKL")
BLACK = frozenset("MNP")

MALE_NAMES: dict[str, tuple[str, ...]] = {
    "english": (
        "Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas", "Oscar", "William",
        "James", "Leo", "Alfie", "Henry", "Joshua", "Freddie", "Archie", "Ethan", "Isaac", "Alexander",
        "Joseph", "Edward", "Samuel", "Max", "Daniel", "Arthur", "Lucas", "Mohammed", "Logan", "Theo",
        "David", "John", "Michael", "Paul", "Mark", "Andrew", "Stephen", "Peter", "Richard", "Robert",
        "Christopher", "Matthew", "Anthony", "Kevin", "Gary", "Steven", "Ian", "Simon", "Neil", "Graham",
        "Keith", "Brian", "Colin", "Kenneth", "Derek", "Roy", "Dennis", "Frank", "Harold", "Stanley",
    ),
    "irish": ("Sean", "Patrick", "Liam", "Conor", "Declan", "Ciaran", "Niall", "Brendan", "Kieran", "Eoin"),
    "european": (
        "Jakub", "Piotr", "Tomasz", "Marek", "Andrei", "Mihai", "Lukas", "Mateusz", "Marco", "Luca",
        "Antonio", "Jonas", "Stefan", "Nikola", "Adam",
    ),
    "south_asian": (
        "Mohammed", "Muhammad", "Ali", "Ahmed", "Hassan", "Imran", "Raj", "Sanjay", "Arjun", "Vikram",
        "Amir", "Bilal", "Zain", "Rahul", "Harpreet", "Ravi", "Abdul", "Omar", "Ibrahim", "Yusuf",
    ),
    "african": (
        "Samuel", "Daniel", "David", "Emmanuel", "Joseph", "Kwame", "Chinedu", "Tunde", "Kofi", "Abdi",
        "Yusuf", "Michael", "Isaac", "Ebuka", "Tendai",
    ),
    "chinese": ("Wei", "Jun", "Ming", "Hao", "Jian", "Lei", "Yang", "Chen", "Daniel", "Kevin"),
}
FEMALE_NAMES: dict[str, tuple[str, ...]] = {
    "english": (
        "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia",
        "Grace", "Freya", "Florence", "Willow", "Emily", "Ella", "Poppy", "Evie", "Charlotte", "Sophie",
        "Jessica", "Lucy", "Hannah", "Chloe", "Emma", "Sarah", "Laura", "Rebecca", "Amy", "Katie",
        "Susan", "Margaret", "Patricia", "Linda", "Elizabeth", "Karen", "Julie", "Helen", "Claire", "Nicola",
        "Joanne", "Michelle", "Tracey", "Deborah", "Jacqueline", "Christine", "Janet", "Sandra", "Carol", "Pauline",
        "Joan", "Dorothy", "Doreen", "Irene", "Eileen", "Jean", "Mary", "Sheila", "Barbara", "Valerie",
    ),
    "irish": ("Siobhan", "Niamh", "Aoife", "Ciara", "Roisin", "Orla", "Sinead", "Mary", "Bridget", "Maeve"),
    "european": (
        "Anna", "Maria", "Katarzyna", "Agnieszka", "Magdalena", "Ioana", "Elena", "Laura", "Giulia", "Sofia",
        "Marta", "Monika", "Eva", "Natalia", "Julia",
    ),
    "south_asian": (
        "Fatima", "Aisha", "Zainab", "Maryam", "Ayesha", "Priya", "Anjali", "Sana", "Nadia", "Amina",
        "Hina", "Khadija", "Sunita", "Neha", "Simran", "Rukhsana", "Shabana", "Parveen", "Noor", "Hafsa",
    ),
    "african": (
        "Grace", "Blessing", "Mercy", "Esther", "Abena", "Chiamaka", "Ngozi", "Amara", "Fatuma", "Ruth",
        "Deborah", "Faith", "Precious", "Adaeze", "Zawadi",
    ),
    "chinese": ("Mei", "Li", "Xin", "Ying", "Hui", "Jing", "Lan", "Yan", "Grace", "Amy"),
}
SURNAMES: dict[str, tuple[str, ...]] = {
    "english": (
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson",
        "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall",
        "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill",
        "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen",
        "James", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett", "Young", "Griffiths",
        "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy",
        "Miller", "Cox", "Richards", "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Wilkinson",
        "Foster", "Chapman", "Mason", "Gray", "Webb", "Rogers", "Holmes", "Hunt", "Palmer", "Lloyd",
    ),
    "irish": ("Murphy", "Kelly", "O'Sullivan", "Walsh", "O'Brien", "Byrne", "Ryan", "O'Connor", "Doyle", "McCarthy"),
    "european": (
        "Kowalski", "Nowak", "Wisniewski", "Popescu", "Ionescu", "Rossi", "Ferreira", "Silva", "Kaminski",
        "Lewandowski", "Horvat", "Petrov", "Schmidt", "Novak", "Santos",
    ),
    "south_asian": (
        "Patel", "Khan", "Ahmed", "Ali", "Hussain", "Shah", "Singh", "Begum", "Iqbal", "Akhtar",
        "Rahman", "Mahmood", "Sharma", "Kaur", "Choudhury", "Malik", "Bibi", "Mistry", "Parmar", "Islam",
    ),
    "african": (
        "Okafor", "Adeyemi", "Mensah", "Osei", "Mohamed", "Abdi", "Okonkwo", "Nwosu", "Boateng", "Adebayo",
        "Ibrahim", "Asante", "Moyo", "Banda", "Eze",
    ),
    "chinese": ("Wang", "Li", "Zhang", "Chen", "Liu", "Wong", "Chan", "Lin", "Huang", "Zhao"),
}
# Formal names and the familiar forms and spellings other systems end up holding.
NAME_VARIANTS: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"), "Robert": ("Rob", "Bob", "Bobby"), "Richard": ("Rich", "Dick"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"), "Margaret": ("Maggie", "Peggy", "Marge"), "James": ("Jim", "Jimmy"),
    "Michael": ("Mike", "Mick"), "Christopher": ("Chris",), "Anthony": ("Tony",), "Thomas": ("Tom", "Tommy"),
    "Joseph": ("Joe",), "Daniel": ("Dan", "Danny"), "Matthew": ("Matt",), "Alexander": ("Alex", "Sandy"),
    "Samuel": ("Sam",), "Edward": ("Ed", "Ted", "Eddie"), "Steven": ("Stephen", "Steve"), "Stephen": ("Steven",),
    "Catherine": ("Kate", "Cathy"), "Jacqueline": ("Jackie",), "Deborah": ("Debbie", "Debra"),
    "Patricia": ("Pat", "Trish"), "Susan": ("Sue", "Suzanne"), "Christine": ("Chris", "Christina"),
    "Rebecca": ("Becky", "Becca"), "Nicola": ("Nicky", "Nichola"), "Jessica": ("Jess",), "Sophie": ("Sophia",),
    "Mohammed": ("Muhammad", "Mohammad", "Mohamed"), "Muhammad": ("Mohammed", "Mohammad"),
    "Isabella": ("Bella", "Izzy"), "Charlotte": ("Lottie",), "Kenneth": ("Ken", "Kenny"), "Dorothy": ("Dot",),
    "Harold": ("Harry",), "Frederick": ("Fred",), "Graham": ("Graeme",), "Sarah": ("Sara",), "Siobhan": ("Shevaun",),
    "Zainab": ("Zaynab",), "Aisha": ("Ayesha",), "Ayesha": ("Aisha",), "Katie": ("Kate", "Katy"),
    "Oliver": ("Olly", "Ollie"), "Frank": ("Francis",), "Jean": ("Jeanne",), "Joanne": ("Jo", "Joanna"),
}

# Invented towns of the region; the first towns are the urban centres (more deprived, more diverse).
TOWNS: tuple[tuple[str, float], ...] = (  # name, urbanness 0..1
    ("Millbridge", 1.0), ("Kingsmoor", 0.9), ("Eastwick Green", 0.8), ("Ravensby", 0.75),
    ("Hollowfield", 0.6), ("Westhaven", 0.55), ("Brackenleigh", 0.45), ("Stonebridge Market", 0.35),
    ("Oakham Vale", 0.3), ("Thornbury Cross", 0.25), ("Ashcombe", 0.2), ("Fernley St Mary", 0.15),
)
STREET_NAMES: tuple[str, ...] = (
    "Church", "Station", "Victoria", "Park", "Manor", "Mill", "Queens", "Kings", "Albert", "Springfield",
    "Grange", "Highfield", "Orchard", "Meadow", "Willow", "Beech", "Oak", "Elm", "Chestnut", "Ash",
    "Windsor", "York", "Alexandra", "Cromwell", "Nelson", "Rectory", "School", "Water", "Bridge", "Market",
    "Hawthorn", "Rowan", "Holly", "Birch", "Cedar", "Sycamore", "Poplar", "Laburnum", "Larch", "Hazel",
)
STREET_KINDS: tuple[str, ...] = ("Road", "Street", "Lane", "Avenue", "Close", "Drive", "Way", "Crescent", "Gardens")
# fmt: on

# Postcode areas that are not used in the UK, so no generated postcode is someone's real address.
POSTCODE_AREAS: tuple[str, ...] = ("SC", "SX", "QV", "XV")
# Postcode unit letters exclude C, I, K, M, O and V (Royal Mail rule).
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# Ofcom's numbers reserved for drama: never allocated to a real line.
DRAMA_LANDLINES: tuple[str, ...] = ("0113 496 0", "0114 496 0", "0115 496 0", "0116 496 0", "0117 496 0")
DRAMA_MOBILE = "07700 900"
