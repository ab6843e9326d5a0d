"""Clinical reference tables: the codes English systems record, and how common each condition is.

SNOMED CT concept ids, dm+d VMP ids and LOINC codes are public identifiers; every one here was checked against
published code lists (UK Core examples and value sets, eFI code sets, QOF-style clusters). Prevalence bands are
"on the register at the reference date" by 10-year age band (0-9, 10-19, ..., 90+), tuned so whole-population
figures land near English QOF 2023/24 (hypertension ~14%, diabetes ~7.5% of 17+, asthma ~6.5%, COPD ~2%,
CKD 3-5 ~4% of 18+, heart failure ~1%, dementia ~0.7%, depression ~13% of 18+, cancer ~3.5%).
"""

from __future__ import annotations

from dataclasses import dataclass

from sharedcare.types import JSON

SNOMED = "http://snomed.info/sct"
DMD = "https://dmd.nhs.uk"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
TREATMENT_FUNCTION = "https://fhir.hl7.org.uk/CodeSystem/UKCore-PracticeSettingCode"
ADMISSION_METHOD = "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland"
DISCHARGE_METHOD = "https://fhir.hl7.org.uk/CodeSystem/UKCore-DischargeMethodEngland"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
# Code systems owned by the synthetic region (local codes a council or trust system would use).
LOCAL = "https://sharedcare.example/CodeSystem"


@dataclass(frozen=True, slots=True)
class Code:
    """One coded concept as the source records it."""

    system: str
    code: str
    display: str

    def coding(self) -> JSON:
        return {"system": self.system, "code": self.code, "display": self.display}

    def concept(self, text: str | None = None) -> JSON:
        return {"coding": [self.coding()], "text": text or self.display}


def sct(code: str, display: str) -> Code:
    return Code(SNOMED, code, display)


def dmd(code: str, display: str) -> Code:
    return Code(DMD, code, display)


def loinc(code: str, display: str) -> Code:
    return Code(LOINC, code, display)


@dataclass(frozen=True, slots=True)
class ConditionDef:
    """A condition a person may have at the reference date, with its age/sex/deprivation structure.

    `bands` is the prevalence per 10-year age band; `deprivation` is the ratio between the most and least deprived
    deciles (applied geometrically around 1); `frail` conditions also scale with the person's latent frailty, which
    is what clusters multimorbidity in the same people.
    """

    key: str
    code: Code
    bands: tuple[float, ...]
    min_age: int = 0
    male: float = 1.0
    female: float = 1.0
    deprivation: float = 1.0
    south_asian: float = 1.0
    black: float = 1.0
    frail: bool = True
    efi: str | None = None  # the eFI deficit it counts towards
    register: str | None = None  # QOF-style register label for the prevalence table
    register_min_age: int = 0
    onset_min_age: int = 0


def _c(key: str, code: str, display: str, bands: tuple[float, ...], **kw: object) -> ConditionDef:
    return ConditionDef(key, sct(code, display), bands, **kw)  # type: ignore[arg-type]


# fmt: off
CONDITIONS: tuple[ConditionDef, ...] = (
    # --- QOF registers
    _c("hypertension", "38341003", "Hypertension",
       (0, 0.0011, 0.0105, 0.0315, 0.0945, 0.1995, 0.3255, 0.4725, 0.588, 0.609), male=1.1, female=0.9,
       deprivation=1.3, black=1.5, efi="hypertension", register="Hypertension", onset_min_age=18),
    _c("diabetes_t2", "44054006", "Diabetes mellitus type 2",
       (0, 0.0004, 0.0044, 0.0118, 0.0318, 0.0636, 0.0947, 0.1199, 0.1125, 0.0888), male=1.2, female=0.8,
       deprivation=1.8, south_asian=2.5, black=1.8, efi="diabetes", register="Diabetes (17+)", register_min_age=17,
       onset_min_age=20),
    _c("diabetes_t1", "46635009", "Diabetes mellitus type 1",
       (0.002, 0.004, 0.005, 0.005, 0.005, 0.005, 0.004, 0.003, 0.002, 0.001), frail=False, efi="diabetes",
       register="Diabetes (17+)", register_min_age=17, onset_min_age=1),
    _c("asthma", "195967001", "Asthma",
       (0.045, 0.075, 0.07, 0.065, 0.065, 0.068, 0.068, 0.068, 0.06, 0.05), min_age=6, male=0.9, female=1.1,
       deprivation=1.2, efi="respiratory disease", register="Asthma (6+)", register_min_age=6, onset_min_age=3),
    _c("copd", "13645005", "Chronic obstructive lung disease",
       (0, 0, 0, 0.001, 0.005, 0.02, 0.045, 0.07, 0.08, 0.06), min_age=35, deprivation=2.5,
       efi="respiratory disease", register="COPD", onset_min_age=35),
    _c("ckd", "700378005", "Chronic kidney disease stage 3A",
       (0, 0, 0.0011, 0.0011, 0.0057, 0.0172, 0.0517, 0.138, 0.2875, 0.4025), min_age=18, deprivation=1.3,
       efi="chronic kidney disease", register="CKD 3-5 (18+)", register_min_age=18, onset_min_age=18),
    _c("heart_failure", "84114007", "Heart failure",
       (0, 0, 0, 0.0004, 0.0013, 0.0052, 0.0156, 0.0455, 0.117, 0.169), male=1.3, female=0.75, deprivation=1.4,
       efi="heart failure", register="Heart failure", onset_min_age=30),
    _c("dementia", "52448006", "Dementia",
       (0, 0, 0, 0, 0, 0.0007, 0.0054, 0.0338, 0.108, 0.27), male=0.85, female=1.15,
       efi="memory and cognitive problems", register="Dementia", onset_min_age=50),
    _c("depression", "35489007", "Depressive disorder",
       (0, 0.03, 0.13, 0.15, 0.155, 0.15, 0.12, 0.09, 0.08, 0.08), min_age=16, male=0.67, female=1.33,
       deprivation=1.5, frail=False, register="Depression (18+)", register_min_age=18, onset_min_age=14),
    _c("cancer", "363406005", "Malignant tumor of colon",
       (0, 0.0006, 0.0023, 0.0057, 0.0138, 0.0345, 0.0862, 0.1495, 0.184, 0.161), deprivation=1.1,
       register="Cancer", onset_min_age=15),
    # --- other long-term conditions (also eFI deficits)
    _c("atrial_fibrillation", "49436004", "Atrial fibrillation",
       (0, 0, 0, 0.0007, 0.0027, 0.0095, 0.0338, 0.0945, 0.1755, 0.2295), male=1.2, female=0.8,
       efi="atrial fibrillation", register="Atrial fibrillation", onset_min_age=30),
    _c("chd", "414545008", "Ischemic heart disease",
       (0, 0, 0, 0.0005, 0.0053, 0.0263, 0.063, 0.1155, 0.1575, 0.168), male=1.4, female=0.6, deprivation=1.6,
       south_asian=1.5, efi="ischaemic heart disease", register="Coronary heart disease", onset_min_age=30),
    _c("stroke", "230690007", "Cerebrovascular accident",
       (0, 0, 0.0007, 0.0013, 0.0039, 0.013, 0.0364, 0.078, 0.13, 0.156), deprivation=1.4,
       efi="cerebrovascular disease", register="Stroke and TIA", onset_min_age=20),
    _c("osteoporosis", "64859006", "Osteoporosis",
       (0, 0, 0, 0.001, 0.003, 0.01, 0.03, 0.07, 0.12, 0.15), male=0.3, female=1.7, efi="osteoporosis",
       onset_min_age=45),
    _c("hypothyroidism", "40930008", "Hypothyroidism",
       (0.001, 0.003, 0.01, 0.02, 0.03, 0.04, 0.055, 0.07, 0.08, 0.08), male=0.3, female=1.7, frail=False,
       efi="thyroid disease", onset_min_age=1),
    _c("osteoarthritis", "396275006", "Osteoarthritis",
       (0, 0, 0.002, 0.01, 0.03, 0.08, 0.15, 0.22, 0.28, 0.3), male=0.8, female=1.2, efi="arthritis",
       onset_min_age=30),
    _c("pvd", "400047006", "Peripheral vascular disease",
       (0, 0, 0, 0, 0.002, 0.008, 0.02, 0.04, 0.06, 0.07), male=1.4, female=0.6, deprivation=1.6,
       efi="peripheral vascular disease", onset_min_age=40),
    _c("parkinsons", "49049000", "Parkinson's disease",
       (0, 0, 0, 0, 0.0005, 0.001, 0.004, 0.01, 0.02, 0.02), male=1.3, female=0.7, efi="parkinsonism and tremor",
       onset_min_age=40),
    _c("heart_valve", "368009", "Heart valve disorder",
       (0.001, 0.001, 0.001, 0.002, 0.003, 0.006, 0.015, 0.035, 0.06, 0.07), efi="heart valve disease"),
    _c("peptic_ulcer", "13200003", "Peptic ulcer",
       (0, 0, 0.002, 0.004, 0.008, 0.012, 0.02, 0.03, 0.035, 0.035), deprivation=1.3, efi="peptic ulcer",
       onset_min_age=18),
    # --- eFI findings and symptoms
    _c("anaemia", "271737000", "Anemia",
       (0.005, 0.01, 0.015, 0.015, 0.015, 0.028, 0.054, 0.11, 0.198, 0.264), efi="anaemia and haematinic deficiency"),
    _c("dizziness", "404640003", "Dizziness",
       (0, 0.005, 0.01, 0.01, 0.015, 0.028, 0.072, 0.154, 0.22, 0.264), efi="dizziness", onset_min_age=10),
    _c("dyspnoea", "267036007", "Dyspnea",
       (0, 0, 0.002, 0.003, 0.005, 0.014, 0.054, 0.132, 0.22, 0.264), efi="dyspnoea", onset_min_age=20),
    _c("falls", "1912002", "Fall",
       (0, 0, 0, 0, 0.002, 0.007, 0.036, 0.154, 0.396, 0.6), efi="falls", onset_min_age=40),
    _c("hip_fracture", "5913000", "Fracture of neck of femur",
       (0, 0, 0, 0, 0, 0.0014, 0.0054, 0.022, 0.066, 0.132), male=0.6, female=1.4, efi="fragility fracture",
       onset_min_age=50),
    _c("hearing_loss", "15188001", "Hearing loss",
       (0.002, 0.003, 0.005, 0.008, 0.015, 0.042, 0.126, 0.308, 0.55, 0.6), efi="hearing impairment"),
    _c("visual_impairment", "397540003", "Visual impairment",
       (0.001, 0.002, 0.002, 0.003, 0.005, 0.014, 0.036, 0.11, 0.22, 0.396), efi="visual impairment"),
    _c("housebound", "160689007", "Housebound",
       (0, 0, 0, 0, 0.001, 0.0028, 0.0108, 0.055, 0.198, 0.484), efi="housebound", onset_min_age=40),
    _c("hypotension", "45007003", "Low blood pressure",
       (0, 0.002, 0.003, 0.003, 0.004, 0.0084, 0.018, 0.044, 0.088, 0.132), efi="hypotension and syncope",
       onset_min_age=15),
    _c("memory_impairment", "386807006", "Memory impairment",
       (0, 0, 0, 0.001, 0.002, 0.0056, 0.018, 0.066, 0.154, 0.22), efi="memory and cognitive problems",
       onset_min_age=40),
    _c("reduced_mobility", "8510008", "Reduced mobility",
       (0, 0, 0.001, 0.002, 0.004, 0.014, 0.045, 0.132, 0.33, 0.6), efi="mobility and transfer problems",
       onset_min_age=20),
    _c("has_caregiver", "184156005", "Has a caregiver",
       (0, 0, 0, 0, 0.001, 0.0042, 0.0144, 0.066, 0.22, 0.55), efi="requirement for care", onset_min_age=40),
    _c("disability", "21134002", "Disability",
       (0.005, 0.01, 0.01, 0.012, 0.015, 0.028, 0.054, 0.11, 0.176, 0.264), efi="activity limitation"),
    _c("insomnia", "193462001", "Insomnia",
       (0, 0.005, 0.02, 0.025, 0.03, 0.049, 0.072, 0.11, 0.132, 0.154), efi="sleep disturbance", onset_min_age=12),
    _c("lives_alone", "105529008", "Lives alone",
       (0, 0, 0.03, 0.04, 0.05, 0.112, 0.216, 0.44, 0.6, 0.6), frail=False, efi="social vulnerability",
       onset_min_age=18),
    _c("incontinence", "165232002", "Urinary incontinence",
       (0, 0, 0.002, 0.005, 0.01, 0.028, 0.072, 0.176, 0.33, 0.484), male=0.6, female=1.4,
       efi="urinary incontinence", onset_min_age=18),
    _c("recurrent_uti", "197927001", "Recurrent urinary tract infection",
       (0.002, 0.003, 0.01, 0.01, 0.01, 0.021, 0.036, 0.088, 0.154, 0.198), male=0.4, female=1.6,
       efi="urinary system disease", onset_min_age=2),
    _c("weight_loss", "89362005", "Weight loss",
       (0, 0.002, 0.003, 0.004, 0.005, 0.0112, 0.027, 0.066, 0.132, 0.198), efi="weight loss and anorexia",
       onset_min_age=10),
)
# fmt: on
CONDITION_BY_KEY = {c.key: c for c in CONDITIONS}

CKD_STAGES = (  # stage, code, weight among CKD 3-5, eGFR range
    (sct("700378005", "Chronic kidney disease stage 3A"), 0.62, (45, 59)),
    (sct("700379002", "Chronic kidney disease stage 3B"), 0.28, (30, 44)),
    (sct("431857002", "Chronic kidney disease stage 4"), 0.08, (15, 29)),
    (sct("433146000", "Chronic kidney disease stage 5"), 0.02, (6, 14)),
)
CANCER_SITES = (  # code, sex restriction, relative weight
    (sct("254837009", "Malignant neoplasm of breast"), "female", 3.0),
    (sct("399068003", "Malignant tumor of prostate"), "male", 3.0),
    (sct("363406005", "Malignant tumor of colon"), None, 1.2),
    (sct("363358000", "Malignant tumor of lung"), None, 0.6),
)

# The 36 deficits of the electronic Frailty Index (Clegg et al., Age Ageing 2016); score = present / 36.
EFI_DEFICITS = (
    "activity limitation",
    "anaemia and haematinic deficiency",
    "arthritis",
    "atrial fibrillation",
    "cerebrovascular disease",
    "chronic kidney disease",
    "diabetes",
    "dizziness",
    "dyspnoea",
    "falls",
    "foot problems",
    "fragility fracture",
    "hearing impairment",
    "heart failure",
    "heart valve disease",
    "housebound",
    "hypertension",
    "hypotension and syncope",
    "ischaemic heart disease",
    "memory and cognitive problems",
    "mobility and transfer problems",
    "osteoporosis",
    "parkinsonism and tremor",
    "peptic ulcer",
    "peripheral vascular disease",
    "polypharmacy",
    "requirement for care",
    "respiratory disease",
    "skin ulcer",
    "sleep disturbance",
    "social vulnerability",
    "thyroid disease",
    "urinary incontinence",
    "urinary system disease",
    "visual impairment",
    "weight loss and anorexia",
)

# --- sensitive items (withheld by default in shared views) ----------------------------------------------
CHLAMYDIA = sct("105629000", "Chlamydial infection")
IVF = sct("52637005", "Test tube ovum fertilization")
VULNERABLE_ADULT = sct("417430008", "Vulnerable adult")
SAFEGUARDING_REFERRAL = sct("514331000000104", "Adult safeguarding referral")

# --- medicines (dm+d VMPs) ----------------------------------------------------------------------------
AMLODIPINE = dmd("319283006", "Amlodipine 5mg tablets")
RAMIPRIL = dmd("318901006", "Ramipril 2.5mg capsules")
LISINOPRIL = dmd("318859000", "Lisinopril 10mg tablets")
BISOPROLOL = dmd("318590006", "Bisoprolol 5mg tablets")
FUROSEMIDE = dmd("317972000", "Furosemide 40mg tablets")
SPIRONOLACTONE = dmd("318056008", "Spironolactone 25mg tablets")
METFORMIN = dmd("325278007", "Metformin 500mg tablets")
ATORVASTATIN = dmd("39733011000001106", "Atorvastatin 20mg tablets")
SALBUTAMOL = dmd("39113611000001102", "Salbutamol 100micrograms/dose inhaler CFC free")
SERTRALINE = dmd("39704111000001102", "Sertraline 50mg tablets")
DONEPEZIL = dmd("42035611000001109", "Donepezil 5mg tablets")
PARACETAMOL = dmd("322236009", "Paracetamol 500mg tablets")
AMOXICILLIN = dmd("39732411000001106", "Amoxicillin 500mg capsules")
DOXYCYCLINE = dmd("41948311000001104", "Doxycycline 100mg capsules")
CLARITHROMYCIN = dmd("41946511000001109", "Clarithromycin 500mg tablets")

DOSAGE = {
    AMLODIPINE.code: "One tablet once a day",
    RAMIPRIL.code: "One capsule once a day",
    LISINOPRIL.code: "One tablet once a day",
    BISOPROLOL.code: "One tablet once a day in the morning",
    FUROSEMIDE.code: "One tablet once a day in the morning",
    SPIRONOLACTONE.code: "One tablet once a day",
    METFORMIN.code: "One tablet twice a day with meals",
    ATORVASTATIN.code: "One tablet at night",
    SALBUTAMOL.code: "Two puffs when required for breathlessness, up to four times a day",
    SERTRALINE.code: "One tablet once a day",
    DONEPEZIL.code: "One tablet at night",
    PARACETAMOL.code: "Two tablets up to four times a day when required; no more than eight in 24 hours",
    AMOXICILLIN.code: "One capsule three times a day for 5 days",
    DOXYCYCLINE.code: "Two capsules on the first day, then one capsule a day for 4 days",
    CLARITHROMYCIN.code: "One tablet twice a day for 5 days",
}

# condition key -> (probability of being on treatment, medicines chosen from) -- first-line English practice
TREATMENTS: dict[str, tuple[float, tuple[Code, ...]]] = {
    "hypertension": (0.8, (AMLODIPINE, RAMIPRIL, LISINOPRIL)),
    "diabetes_t2": (0.85, (METFORMIN,)),
    "chd": (0.85, (ATORVASTATIN,)),
    "stroke": (0.8, (ATORVASTATIN,)),
    "heart_failure": (0.9, (BISOPROLOL, FUROSEMIDE, RAMIPRIL)),
    "atrial_fibrillation": (0.7, (BISOPROLOL,)),
    "asthma": (0.9, (SALBUTAMOL,)),
    "copd": (0.9, (SALBUTAMOL,)),
    "depression": (0.45, (SERTRALINE,)),
    "dementia": (0.5, (DONEPEZIL,)),
    "osteoarthritis": (0.5, (PARACETAMOL,)),
}
ANTIBIOTICS = (AMOXICILLIN, DOXYCYCLINE, CLARITHROMYCIN)

# --- observations ---------------------------------------------------------------------------------------
BP_PANEL = (sct("75367002", "Blood pressure"), loinc("85354-9", "Blood pressure panel with all children optional"))
HOME_BP = (
    sct("335661000000109", "Self measured blood pressure reading"),
    loinc("85354-9", "Blood pressure panel with all children optional"),
)
SYSTOLIC = (sct("72313002", "Systolic arterial pressure"), loinc("8480-6", "Systolic blood pressure"))
DIASTOLIC = (sct("1091811000000102", "Diastolic arterial pressure"), loinc("8462-4", "Diastolic blood pressure"))
AVERAGE_BP = sct("723232008", "Average blood pressure")
AVERAGE_HOME_SYSTOLIC = sct("413606001", "Average home systolic blood pressure")
AVERAGE_HOME_DIASTOLIC = sct("413605002", "Average home diastolic blood pressure")
BMI = (sct("60621009", "Body mass index"), loinc("39156-5", "Body mass index (BMI) [Ratio]"))
WEIGHT = (sct("27113001", "Body weight"), loinc("29463-7", "Body weight"))
HBA1C = (
    sct("999791000000106", "Haemoglobin A1c level - IFCC standardised"),
    loinc("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol"),
)
EGFR = (
    sct("1011481000000105", "eGFR using creatinine (CKD-EPI) per 1.73 square metres"),
    loinc("62238-1", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] by Creatinine-based formula"),
)
CHOLESTEROL = (sct("1005671000000105", "Serum cholesterol level"), loinc("2093-3", "Cholesterol [Moles/volume]"))
SMOKING_STATUS = loinc("72166-2", "Tobacco smoking status")
SMOKER = sct("77176002", "Smoker")
EX_SMOKER = sct("8517006", "Ex-smoker")
NEVER_SMOKED = sct("266919005", "Never smoked tobacco")

# --- encounters, procedures, referrals, documents ---------------------------------------------------------
CONSULTATION = sct("11429006", "Consultation")
EMERGENCY_ADMISSION = sct("50849002", "Emergency room admission")
HOSPITAL_ADMISSION = sct("32485007", "Hospital admission")
HOME_VISIT = sct("439708006", "Home visit")
REFERRAL = sct("306206005", "Referral to service")
SPIROMETRY = sct("127783003", "Spirometry")
ECHOCARDIOGRAPHY = sct("40701008", "Echocardiography")
CHEST_XRAY = sct("399208008", "Plain chest X-ray")
BONE_DENSITY_SCAN = sct("312681000", "Bone density scan")
PACEMAKER = sct("25267002", "Insertion of intracardiac pacemaker")

# Elective pathways: (procedure, treatment function code, display, typical age range)
ELECTIVE = (
    (sct("52734007", "Total replacement of hip"), "110", "Trauma and Orthopaedics", (55, 90)),
    (sct("609588000", "Total knee replacement"), "110", "Trauma and Orthopaedics", (55, 90)),
    (sct("54885007", "Cataract extraction"), "130", "Ophthalmology", (60, 95)),
    (sct("44558001", "Repair of inguinal hernia"), "100", "General Surgery", (25, 85)),
    (sct("73761001", "Colonoscopy"), "301", "Gastroenterology", (40, 85)),
)
SPECIALTY_FOR = {  # condition key -> outpatient treatment function (code, display)
    "heart_failure": ("320", "Cardiology"),
    "atrial_fibrillation": ("320", "Cardiology"),
    "chd": ("320", "Cardiology"),
    "copd": ("340", "Respiratory Medicine"),
    "cancer": ("100", "General Surgery"),
    "ckd": ("300", "General Internal Medicine"),
    "diabetes_t1": ("300", "General Internal Medicine"),
    "falls": ("430", "Geriatric Medicine"),
    "hip_fracture": ("110", "Trauma and Orthopaedics"),
    "osteoarthritis": ("110", "Trauma and Orthopaedics"),
}

DISCHARGE_SUMMARY = loinc("18842-5", "Discharge summary")
CONSULT_NOTE = loinc("11488-4", "Consult note")
REFERRAL_NOTE = loinc("57133-1", "Referral note")

CARE_PLANS = {  # condition key -> plan category
    "diabetes_t2": sct("698360004", "Diabetes self management plan"),
    "diabetes_t1": sct("698360004", "Diabetes self management plan"),
    "asthma": sct("699728000", "Asthma self management"),
    "heart_failure": sct("735984001", "Heart failure self management plan"),
    "copd": sct("412776001", "Chronic obstructive pulmonary disease clinical management plan"),
    "dementia": sct("386257007", "Dementia management"),
    "cancer": sct("736252007", "Cancer care plan"),
}

# --- allergies and immunisations -------------------------------------------------------------------------
NO_KNOWN_ALLERGY = sct("716186003", "No known allergy")
DRUG_ALLERGY = sct("372687004", "Amoxicillin")
URTICARIA = sct("247472004", "Urticarial rash")
OTHER_ALLERGIES = (  # (code, category, prevalence)
    (sct("91935009", "Allergy to peanuts"), "food", 0.012),
    (sct("300916003", "Latex allergy"), "environment", 0.006),
    (sct("418689008", "Allergy to grass pollen"), "environment", 0.04),
    (sct("232350006", "House dust mite allergy"), "environment", 0.02),
    (sct("91930004", "Allergy to eggs"), "food", 0.004),
)
FLU_VACCINE = dmd(
    "11278411000001109",
    "Influenza vaccine (split virion, inactivated) suspension for injection 0.5ml pre-filled syringes (Pfizer Ltd)",
)
COVID_VACCINE = dmd(
    "39115611000001103",
    "Comirnaty COVID-19 mRNA Vaccine 30micrograms/0.3ml dose concentrate for dispersion for injection "
    "multidose vials (Pfizer Ltd)",
)

# --- council social care (local codes, as a social care case management system records them) ------------
CARE_ACT_ASSESSMENT = Code(f"{LOCAL}/social-care-assessment", "CA-NEEDS", "Care Act 2014 needs assessment")
CARER_ASSESSMENT = Code(f"{LOCAL}/social-care-assessment", "CA-CARER", "Carer's assessment")
CARE_REVIEW = Code(f"{LOCAL}/social-care-assessment", "CA-REVIEW", "Care and support plan review")
SUPPORT_SERVICES = (
    Code(f"{LOCAL}/social-care-service", "HOMECARE", "Home care (domiciliary care)"),
    Code(f"{LOCAL}/social-care-service", "DAYCARE", "Day opportunities"),
    Code(f"{LOCAL}/social-care-service", "TELECARE", "Telecare and community alarm"),
    Code(f"{LOCAL}/social-care-service", "RESPITE", "Respite care"),
    Code(f"{LOCAL}/social-care-service", "RESIDENTIAL", "Residential care home placement"),
)
RTT_STATUS = f"{LOCAL}/rtt-period-status"
