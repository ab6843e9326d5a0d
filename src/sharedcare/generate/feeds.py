"""Who records what about a person: the GP practice (and the previous one after a move), acute trusts, community
services, the mental health trust and the council, each publishing its own Patient and clinical data.

Dates hang together: a condition's diagnosing consultation falls on its onset, reviews and results follow it,
medicines start after it, a hip fracture arrives through A&E and leaves with a replacement hip, and a pathway's
clock starts with the GP's referral. Each organisation's view uses its own random stream, so one feed's details
never shift another's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from random import Random

from sharedcare.generate import codes as C
from sharedcare.generate.clinical import Diagnosis, Health, efi_category
from sharedcare.generate.errors import ErrorRates, apply_errors
from sharedcare.generate.identity import (
    SEALED_LOCAL_OFFSET,
    TAG_ELSEWHERE,
    identity_on,
    is_new_identity,
    mark_new_identity,
)
from sharedcare.generate.organisations import GP, Organisation, Region
from sharedcare.generate.patients import PROFILES, LocalIds, patient_resource
from sharedcare.generate.population import Person, person_rng
from sharedcare.generate.records import Record, component, instant, quantity, restricted
from sharedcare.types import JSON

CHRONIC_REVIEWED = (
    "hypertension",
    "diabetes_t2",
    "diabetes_t1",
    "copd",
    "asthma",
    "ckd",
    "chd",
    "heart_failure",
    "stroke",
    "atrial_fibrillation",
    "dementia",
)
CARDIOVASCULAR = ("hypertension", "diabetes_t2", "diabetes_t1", "ckd", "chd", "heart_failure", "stroke")


@dataclass(slots=True)
class OrgRecord:
    """One organisation's resources about one person (or, with no person, about itself)."""

    ods: str
    patient_id: str | None
    person_key: str | None
    resources: list[JSON]


@dataclass(slots=True)
class HospitalEvent:
    kind: str  # "ae" | "admission" | "outpatient" | "elective" | "ivf"
    day: date
    trust: Organisation
    reason: Diagnosis | None = None
    service: tuple[str, str] = ("300", "General Internal Medicine")
    procedure: C.Code | None = None
    open: bool = False  # an elective pathway still waiting
    weeks: int = 0
    nights: int = 0
    died: bool = False
    followed: list[HospitalEvent] = field(default_factory=list)


@dataclass
class FeedContext:
    region: Region
    seed: int
    local_ids: LocalIds
    errors: ErrorRates = field(default_factory=ErrorRates)


def person_records(ctx: FeedContext, person: Person, health: Health) -> list[OrgRecord]:
    """Every organisation's record of `person`, GP first."""
    region = ctx.region
    events = _hospital_events(person, health, region, person_rng(ctx.seed, person.index, "hospital"))
    practice = region.practices[person.practice]
    records = [_gp(ctx, person, health, practice, events, current=True)]
    if person.new_identity is not None:  # the deducted registration of the first identity, where it was registered
        at = _practice_on(person, region, person.new_identity.on)
        records.append(_gp(ctx, person, health, at, [], current=False, sealed=True))
    if person.previous_practice is not None and person.moved_on is not None:
        records.append(_gp(ctx, person, health, region.practices[person.previous_practice], [], current=False))
    trusts: dict[str, list[HospitalEvent]] = {}
    for e in events:
        trusts.setdefault(e.trust.ods, []).append(e)
    for trust_events in trusts.values():
        records.append(_acute(ctx, person, health, trust_events))
    town = person.address.area.town
    rng = person_rng(ctx.seed, person.index, "services")
    if _needs_community(person, health, rng):
        records.append(_community(ctx, person, health, region.community_for(town)))
    if _needs_mental_health(health, rng):
        records.append(_mental_health(ctx, person, health, region.mental_health))
    if _needs_social_care(person, health, rng):
        records.append(_council(ctx, person, health, region.council_for(town)))
    return records


def organisation_record(org: Organisation, resources: list[JSON]) -> OrgRecord:
    return OrgRecord(org.ods, None, None, resources)


# --- shared helpers --------------------------------------------------------------------------------------
def _days_before(day: date, rng: Random, low: int, high: int) -> date:
    return day - timedelta(days=rng.randrange(low, max(low + 1, high)))


def _start(
    ctx: FeedContext,
    person: Person,
    org: Organisation,
    seen_on: date,
    practice: Organisation,
    active: bool = True,
    *,
    sealed: bool = False,
) -> Record:
    """The organisation's Patient for the person as known on `seen_on` (a first identity's record: `sealed`)."""
    stream = f"{org.ods}:sealed" if sealed else org.ods
    rng = person_rng(ctx.seed, person.index, stream)
    local = ctx.local_ids.number(org.ods, person.index + (SEALED_LOCAL_OFFSET if sealed else 0))
    known = identity_on(person, seen_on)
    patient_id, patient = patient_resource(known, org, local, rng, seen_on=seen_on, practice=practice, active=active)
    if is_new_identity(person, seen_on) and (
        org.kind == GP or person_rng(ctx.seed, person.index, f"{org.ods}:identity").random() < TAG_ELSEWHERE
    ):
        mark_new_identity(patient)
    if ctx.errors.active:
        errors = person_rng(ctx.seed, person.index, f"{stream}:errors")
        apply_errors(patient, PROFILES[org.kind].no_nhs_number, ctx.errors, errors)
    rec = Record(org, patient_id, rng, known.key)
    rec.resources.append(patient)
    return rec


def _done(rec: Record, person: Person) -> OrgRecord:
    return OrgRecord(rec.org.ods, rec.patient_id, rec.person_key or person.key, rec.resources)


def _practice_on(person: Person, region: Region, day: date) -> Organisation:
    if person.previous_practice is not None and person.moved_on is not None and day < person.moved_on:
        return region.practices[person.previous_practice]
    return region.practices[person.practice]


def _poisson(rng: Random, mean: float) -> int:
    """Knuth's method; means here are small."""
    limit, k, p = math.exp(-min(mean, 30.0)), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# --- GP practice ------------------------------------------------------------------------------------------
def _gp(
    ctx: FeedContext,
    person: Person,
    health: Health,
    practice: Organisation,
    events: list[HospitalEvent],
    *,
    current: bool,
    sealed: bool = False,
) -> OrgRecord:
    """The practice's record; not `current`: a previous practice's, or (`sealed`) a first identity's."""
    if sealed and person.new_identity is not None:
        ref = person.new_identity.on - timedelta(days=1)
    else:
        ref = person.reference_date if current else (person.moved_on or person.reference_date)
    rec = _start(ctx, person, practice, ref, practice, active=current and person.alive, sealed=sealed)
    rng = rec.rng
    diagnoses = [d for d in health.diagnoses if d.onset < ref]
    dx_ids = _gp_problems(rec, person, diagnoses, ref)
    if current:
        _gp_reviews(rec, person, health, dx_ids, ref)
        _gp_consultations(rec, person, health, ref, per_year=1.0)
        _gp_medicines(rec, person, health, dx_ids, ref)
        _gp_allergies(rec, person, health)
        _gp_immunisations(rec, person, health, ref)
        _gp_referrals(rec, person, events)
        _gp_care_plans(rec, health, dx_ids, ref)
        _home_blood_pressure(rec, person, health, ref)
        _gp_sensitive(rec, person, health, ref)
        if person.alive:
            _gp_appointments(rec, person, ref)
    else:
        _gp_consultations(rec, person, health, ref, per_year=0.5)
        if person.age_on(ref) >= 40 and rng.random() < 0.6:
            when = instant(_days_before(ref, rng, 30, 700), rng.randrange(8 * 60, 17 * 60))
            rec.blood_pressure(when, *_bp(person, health, rng, treated=True))
    return _done(rec, person)


def _gp_problems(rec: Record, person: Person, diagnoses: list[Diagnosis], ref: date) -> dict[str, str]:
    rng, ids = rec.rng, {}
    for d in diagnoses:
        encounter = None
        if (ref - d.onset).days < 5 * 365:
            minutes = rng.randrange(8 * 60, 17 * 60)
            encounter = rec.encounter(
                "AMB",
                C.CONSULTATION,
                instant(d.onset, minutes),
                instant(d.onset, minutes + 10),
                who=rec.clinician("General"),
                reason=d.code,
            )
        abatement = None
        if d.status in ("resolved", "remission"):
            abatement = min(d.onset + timedelta(days=rng.randrange(20, 400)), ref - timedelta(days=1))
        ids[d.key] = rec.condition(d.code, d.onset, status=d.status, encounter=encounter, abatement=abatement)
    return ids


def _bp(person: Person, health: Health, rng: Random, *, treated: bool, home: bool = False) -> tuple[int, int]:
    age = person.age
    systolic = 108 + 0.45 * min(age, 85) + rng.gauss(0, 9)
    diastolic = 68 + 0.15 * min(age, 60) + rng.gauss(0, 6)
    if health.has("hypertension"):
        systolic += 8 if treated else 22
        diastolic += 4 if treated else 11
    if home:
        systolic, diastolic = systolic - 6 + rng.gauss(0, 5), diastolic - 3 + rng.gauss(0, 3)
    systolic = max(85, min(220, round(systolic)))
    diastolic = max(45, min(125, round(diastolic), systolic - 20))
    return systolic, diastolic


def _gp_reviews(rec: Record, person: Person, health: Health, dx_ids: dict[str, str], ref: date) -> None:
    """Annual long-term condition reviews (QOF), and the checks everyone else gets now and then."""
    rng = rec.rng
    chronic = [k for k in CHRONIC_REVIEWED if health.has(k)]
    age = person.age
    bmi = max(15.0, min(55.0, rng.gauss(27.5 + (3.5 if health.has("diabetes_t2") else 0.0), 4.8)))
    on_statin = any(m.code is C.ATORVASTATIN for m in health.repeats())
    if chronic:
        for year in range(2):
            day = _days_before(ref, rng, year * 365 + 7, year * 365 + 330)
            onset = min(health.get(k).onset for k in chronic)  # type: ignore[union-attr]
            if day <= onset or day <= person.birth_date:
                continue
            minutes = rng.randrange(8 * 60, 17 * 60)
            enc = rec.encounter(
                "AMB",
                C.CONSULTATION,
                instant(day, minutes),
                instant(day, minutes + 20),
                who=rec.clinician("Practice nurse"),
                reason=health.get(chronic[0]).code,
            )  # type: ignore[union-attr]
            _review_measurements(rec, person, health, enc, day, minutes, bmi, on_statin)
    elif age >= 40 and rng.random() < 0.75:
        day = _days_before(ref, rng, 20, 3 * 365)
        when = instant(day, rng.randrange(8 * 60, 17 * 60))
        rec.blood_pressure(when, *_bp(person, health, rng, treated=False))
        if rng.random() < 0.6:
            rec.observation(C.BMI, when, value=quantity(round(bmi, 1), "kg/m2", "kg/m2"))
        if age < 75 and rng.random() < 0.5:
            rec.observation(
                C.CHOLESTEROL,
                when,
                category="laboratory",
                value=quantity(round(max(2.5, rng.gauss(5.2, 0.9)), 1), "mmol/L", "mmol/L"),
            )
            rec.observation(
                C.HBA1C,
                when,
                category="laboratory",
                value=quantity(round(max(28, rng.gauss(37, 3.5))), "mmol/mol", "mmol/mol"),
            )
    if age >= 16 and rng.random() < 0.9:
        status = {"current": C.SMOKER, "ex": C.EX_SMOKER, "never": C.NEVER_SMOKED}[person.smoking]
        when = instant(_days_before(ref, rng, 10, 900))
        rec.observation(
            (C.SMOKING_STATUS,), when, category="social-history", value={"valueCodeableConcept": status.concept()}
        )


def _review_measurements(
    rec: Record, person: Person, health: Health, enc: str, day: date, minutes: int, bmi: float, on_statin: bool
) -> None:
    rng = rec.rng
    when = instant(day, minutes + 5)
    if any(health.has(k) for k in CARDIOVASCULAR) or rng.random() < 0.5:
        rec.blood_pressure(when, *_bp(person, health, rng, treated=True), encounter=enc)
    if health.has("diabetes_t2") or health.has("diabetes_t1") or health.has("hypertension") or rng.random() < 0.3:
        rec.observation(C.BMI, when, value=quantity(round(bmi + rng.gauss(0, 0.6), 1), "kg/m2", "kg/m2"), encounter=enc)
    lab_day = instant(day - timedelta(days=rng.randrange(3, 14)), rng.randrange(8 * 60, 11 * 60))
    if health.has("diabetes_t2") or health.has("diabetes_t1"):
        for extra in (0, 182):
            lab = instant(day - timedelta(days=extra + rng.randrange(3, 14)), rng.randrange(8 * 60, 11 * 60))
            value = round(max(40, min(110, rng.gauss(58, 10))))
            rec.observation(C.HBA1C, lab, category="laboratory", value=quantity(value, "mmol/mol", "mmol/mol"))
    ckd = health.get("ckd")
    if ckd or any(health.has(k) for k in ("diabetes_t2", "diabetes_t1", "hypertension", "heart_failure")):
        if ckd and ckd.egfr:
            egfr = rng.randint(*ckd.egfr)
        else:
            egfr = round(max(60, min(120, 108 - 0.75 * max(0, person.age - 30) + rng.gauss(0, 8))))
        rec.observation(
            C.EGFR, lab_day, category="laboratory", value=quantity(egfr, "mL/min/{1.73_m2}", "mL/min/1.73m2")
        )
    if any(health.has(k) for k in ("diabetes_t2", "chd", "stroke")) or rng.random() < 0.2:
        chol = max(2.2, rng.gauss(5.1 - (1.3 if on_statin else 0.0), 0.8))
        rec.observation(
            C.CHOLESTEROL, lab_day, category="laboratory", value=quantity(round(chol, 1), "mmol/L", "mmol/L")
        )


def _gp_consultations(rec: Record, person: Person, health: Health, ref: date, *, per_year: float) -> None:
    rng = rec.rng
    chronic = sum(1 for d in health.diagnoses if d.onset < ref)
    mean = per_year * (1.2 + person.age_on(ref) / 30 + 0.5 * min(chronic, 8))
    for _ in range(min(_poisson(rng, mean), 14)):
        day = _days_before(ref, rng, 1, 365)
        if day <= person.birth_date:
            continue
        minutes = rng.randrange(8 * 60, 18 * 60)
        klass = "VR" if rng.random() < 0.3 else "AMB"
        reason = None
        active = [d for d in health.diagnoses if d.onset < day]
        if active and rng.random() < 0.5:
            reason = rng.choice(active).code
        rec.encounter(
            klass,
            C.CONSULTATION,
            instant(day, minutes),
            instant(day, minutes + 10),
            reason=reason,
            who=rec.clinician("General"),
        )


def _gp_medicines(rec: Record, person: Person, health: Health, dx_ids: dict[str, str], ref: date) -> None:
    rng = rec.rng
    for med in health.medicines:
        code = med.code
        if med.repeat:
            issued = max(med.start, _days_before(ref, rng, 1, 56))
            status = "active" if person.alive else "stopped"
            reason = dx_ids.get(med.condition) if med.condition else None
            rec.medication_request(code, issued, C.DOSAGE[code.code], repeat=True, status=status, reason=reason)
        else:
            rec.medication_request(code, med.start, C.DOSAGE[code.code], repeat=False, status="completed")


def _gp_allergies(rec: Record, person: Person, health: Health) -> None:
    rng = rec.rng
    recorded = max(person.birth_date + timedelta(days=200), person.registered_on)
    found = False
    if health.penicillin_allergy:
        rec.allergy(C.DRUG_ALLERGY, "medication", recorded, reaction=C.URTICARIA)
        found = True
    for code, category, prevalence in C.OTHER_ALLERGIES:
        if rng.random() < prevalence:
            rec.allergy(code, category, recorded)
            found = True
    if not found and rng.random() < 0.7:
        rec.allergy(C.NO_KNOWN_ALLERGY, None, recorded)


def _gp_immunisations(rec: Record, person: Person, health: Health, ref: date) -> None:
    rng = rec.rng
    at_risk = any(health.has(k) for k in CHRONIC_REVIEWED)
    for season in range(ref.year - 2, ref.year + 1):
        day = date(season, 10, 1) + timedelta(days=rng.randrange(0, 75))
        if day >= ref or person.age_on(day) < 18:
            continue
        chance = 0.78 if person.age_on(day) >= 65 else (0.45 if at_risk else 0.0)
        if rng.random() < chance:
            rec.immunization(C.FLU_VACCINE, day)
        if person.age_on(day) >= 75 and season >= ref.year - 1 and rng.random() < 0.6:
            rec.immunization(C.COVID_VACCINE, day + timedelta(days=rng.randrange(0, 20)))


def _gp_referrals(rec: Record, person: Person, events: list[HospitalEvent]) -> None:
    """The GP's referral behind each planned hospital pathway, with its letter."""
    for e in events:
        if e.kind not in ("elective", "outpatient") or e.reason is None and e.procedure is None:
            continue
        referred = e.day - timedelta(days=e.weeks * 7 if e.kind == "elective" else rec.rng.randrange(14, 90))
        if referred <= person.birth_date:
            continue
        code = e.procedure or C.REFERRAL
        sr = rec.service_request(
            C.REFERRAL,
            referred,
            status="completed",
            service=e.service,
            performer=e.trust.identifier_reference(),
            reason=e.reason.code if e.reason else code,
            requester=rec.clinician("General").reference(),
        )
        text = (
            f"Dear colleague,\n\nThank you for seeing {person.title} {person.family}, aged "
            f"{person.age_on(referred)}, regarding {(e.reason.code.display if e.reason else code.display).lower()}."
            f"\nPlease assess and advise on management.\n\nReferral ServiceRequest/{sr}\n\nYours sincerely"
        )
        rec.document(C.REFERRAL_NOTE, referred, text)


def _gp_care_plans(rec: Record, health: Health, dx_ids: dict[str, str], ref: date) -> None:
    rng = rec.rng
    for d in health.diagnoses:
        category = C.CARE_PLANS.get(d.key)
        if category is None or d.status == "resolved" or rng.random() > 0.6 or d.key not in dx_ids:
            continue
        created = max(d.onset, _days_before(ref, rng, 30, 700))
        rec.care_plan(
            f"{d.code.display} care plan",
            category,
            created,
            f"Shared plan agreed with the patient for {d.code.display.lower()}.",
            activities=("Annual review with practice nurse", "Self-management education", "Medication review"),
            addresses=dx_ids[d.key],
        )


def _home_blood_pressure(rec: Record, person: Person, health: Health, ref: date) -> None:
    """NICE NG136 home monitoring: two seated readings morning and evening for 7 days; day 1 discarded."""
    ht = health.get("hypertension")
    if ht is None:
        return
    rng = rec.rng
    recent = (ref - ht.onset).days < 3 * 365
    if recent and rng.random() < 0.35:
        start, treated = ht.onset - timedelta(days=14), False
    elif rng.random() < 0.08 and person.alive:
        start, treated = _days_before(ref, rng, 10, 180), True
    else:
        return
    patient = {"reference": f"Patient/{rec.patient_id}"}
    kept: list[tuple[int, int]] = []
    for day in range(7):
        for session in (7 * 60 + rng.randrange(0, 60), 19 * 60 + rng.randrange(0, 60)):
            for reading in range(2):
                systolic, diastolic = _bp(person, health, rng, treated=treated, home=True)
                rec.blood_pressure(
                    instant(start + timedelta(days=day), session + reading * 2),
                    systolic,
                    diastolic,
                    codes=C.HOME_BP,
                    performer=patient,
                    method="Validated home blood pressure monitor",
                )
                if day > 0:
                    kept.append((systolic, diastolic))
    mean_s = round(sum(s for s, _ in kept) / len(kept))
    mean_d = round(sum(d for _, d in kept) / len(kept))
    rec.observation(
        (C.AVERAGE_BP,),
        instant(start + timedelta(days=7), 10 * 60),
        components=[
            component((C.AVERAGE_HOME_SYSTOLIC,), mean_s, "mm[Hg]", "mmHg"),
            component((C.AVERAGE_HOME_DIASTOLIC,), mean_d, "mm[Hg]", "mmHg"),
        ],
        method="Mean of 24 home readings, day 1 discarded (NICE NG136)",
    )


def _gp_sensitive(rec: Record, person: Person, health: Health, ref: date) -> None:
    rng = rec.rng
    if 16 <= person.age <= 35 and rng.random() < 0.03:
        day = _days_before(ref, rng, 30, 5 * 365)
        if person.age_on(day) >= 16:
            rec.condition(
                C.CHLAMYDIA,
                day,
                category="encounter-diagnosis",
                status="resolved",
                abatement=day + timedelta(days=14),
                meta=restricted("STD"),
            )
    vulnerable = health.has("dementia") or health.has("housebound")
    if person.age >= 18 and rng.random() < (0.03 if vulnerable else 0.004):
        rec.flag(C.VULNERABLE_ADULT, _days_before(ref, rng, 30, 3 * 365), meta=restricted("SDV"))


def _gp_appointments(rec: Record, person: Person, ref: date) -> None:
    rng = rec.rng
    if rng.random() < 0.18:
        day = ref + timedelta(days=rng.randrange(1, 28))
        rec.appointment(
            instant(day, rng.randrange(16, 35) * 30),
            10,
            status="booked",
            description="GP appointment",
            who=rec.clinician("General"),
        )
    if rng.random() < 0.05:
        day = _days_before(ref, rng, 3, 90)
        rec.appointment(
            instant(day, rng.randrange(16, 35) * 30),
            10,
            status="noshow",
            description="GP appointment (did not attend)",
            who=rec.clinician("General"),
        )


# --- hospital activity --------------------------------------------------------------------------------------
def _hospital_events(person: Person, health: Health, region: Region, rng: Random) -> list[HospitalEvent]:
    """A&E attendances, admissions, clinics and elective pathways of the last two years."""
    ref, age = person.reference_date, person.age
    home = region.acute_for(person.address.area.town)

    def trust() -> Organisation:
        return home if rng.random() < 0.9 or len(region.acute) == 1 else rng.choice(region.acute)

    events: list[HospitalEvent] = []
    for d in health.diagnoses:
        recent = 0 < (ref - d.onset).days < 2 * 365
        if recent and d.key in ("hip_fracture", "heart_failure", "stroke"):
            events.append(_admission(d.onset, trust(), d, age, rng, via_ae=True))
        specialty = C.SPECIALTY_FOR.get(d.key)
        if specialty and d.status != "resolved" and rng.random() < (0.7 if recent else 0.25):
            day = max(d.onset + timedelta(days=rng.randrange(14, 120)), _days_before(ref, rng, 20, 700))
            if day < ref:
                events.append(HospitalEvent("outpatient", day, home, d, specialty))
    rate = 0.22 + (0.3 if age < 5 else 0) + (0.3 if age >= 75 else 0) + (0.4 if health.has("falls") else 0)
    rate += 0.3 if health.has("copd") or health.has("heart_failure") else 0
    for _ in range(_poisson(rng, 2 * rate)):
        day = _days_before(ref, rng, 1, 730)
        if day <= person.birth_date:
            continue
        reason = _ae_reason(health, rng)
        if rng.random() < (0.5 if age >= 75 else 0.18):
            events.append(_admission(day, trust(), reason, age, rng, via_ae=True))
        else:
            events.append(HospitalEvent("ae", day, trust(), reason, ("180", "Emergency Medicine")))
    if rng.random() < (0.11 if age >= 50 else 0.03):
        events.append(_elective(person, home, rng))
    if person.sex == "female" and 28 <= age <= 44 and rng.random() < 0.008:
        events.append(HospitalEvent("ivf", _days_before(ref, rng, 30, 700), home, None, ("502", "Gynaecology"), C.IVF))
    if person.death_date is not None and rng.random() < 0.45:
        nights = rng.randrange(1, 15)
        events.append(
            HospitalEvent(
                "admission",
                person.death_date - timedelta(days=nights),
                home,
                _ae_reason(health, rng),
                ("300", "General Internal Medicine"),
                nights=nights,
                died=True,
            )
        )
    return [e for e in events if e.day > person.birth_date and e.day <= ref]


def _ae_reason(health: Health, rng: Random) -> Diagnosis | None:
    likely = [
        d
        for d in health.diagnoses
        if d.key in ("falls", "copd", "heart_failure", "dyspnoea", "dizziness", "atrial_fibrillation", "asthma")
    ]
    return rng.choice(likely) if likely and rng.random() < 0.6 else None


def _admission(
    day: date, trust: Organisation, reason: Diagnosis | None, age: int, rng: Random, *, via_ae: bool
) -> HospitalEvent:
    mean = 1.5 + max(0, age - 50) / 6
    nights = max(1, min(40, round(rng.expovariate(1 / mean))))
    procedure = None
    service = ("300", "General Internal Medicine")
    if reason is not None and reason.key == "hip_fracture":
        procedure, service = C.ELECTIVE[0][0], ("110", "Trauma and Orthopaedics")
    elif reason is not None and reason.key == "heart_failure":
        procedure, service = C.ECHOCARDIOGRAPHY, ("320", "Cardiology")
    elif reason is not None and reason.key == "copd":
        procedure, service = C.CHEST_XRAY, ("340", "Respiratory Medicine")
    return HospitalEvent("admission", day, trust, reason, service, procedure, nights=nights)


def _elective(person: Person, trust: Organisation, rng: Random) -> HospitalEvent:
    options = [e for e in C.ELECTIVE if e[3][0] <= person.age <= e[3][1]] or [C.ELECTIVE[3]]
    procedure, tfc, tfc_name, _ = rng.choice(options)
    weeks = max(1, min(104, round(math.exp(rng.gauss(math.log(14), 0.7)))))
    still_waiting = rng.random() < 0.75 and person.alive
    day = person.reference_date if still_waiting else _days_before(person.reference_date, rng, 7, 300)
    return HospitalEvent("elective", day, trust, None, (tfc, tfc_name), procedure, open=still_waiting, weeks=weeks)


# --- acute trust ------------------------------------------------------------------------------------------
def _acute(ctx: FeedContext, person: Person, health: Health, events: list[HospitalEvent]) -> OrgRecord:
    trust = events[0].trust
    last = max(e.day for e in events)
    rec = _start(ctx, person, trust, last, _practice_on(person, ctx.region, last))
    for e in sorted(events, key=lambda e: e.day):
        if e.kind == "ae":
            _ae_attendance(rec, e)
        elif e.kind == "admission":
            _inpatient_spell(rec, person, health, e)
        elif e.kind == "outpatient":
            _outpatient(rec, person, health, e)
        elif e.kind == "elective":
            _pathway(rec, person, e)
        elif e.kind == "ivf":
            _ivf(rec, e)
    return _done(rec, person)


def _ae_attendance(rec: Record, e: HospitalEvent) -> str:
    rng = rec.rng
    arrive = rng.randrange(0, 24 * 60)
    return rec.encounter(
        "EMER",
        C.EMERGENCY_ADMISSION,
        instant(e.day, arrive),
        instant(e.day, arrive + rng.randrange(60, 6 * 60)),
        who=rec.clinician("Emergency"),
        reason=e.reason.code if e.reason else None,
        service=("180", "Emergency Medicine"),
    )


def _inpatient_spell(rec: Record, person: Person, health: Health, e: HospitalEvent) -> None:
    rng = rec.rng
    if not e.died:
        _ae_attendance(rec, e)
    end_day = e.day + timedelta(days=e.nights)
    method = (
        ("4", "Patient died") if e.died else ("1", "Patient discharged on clinical advice or with clinical consent")
    )
    start = instant(e.day, rng.randrange(10 * 60, 23 * 60))
    extra: JSON = {
        "hospitalization": {
            "admitSource": {
                "coding": [
                    {
                        "system": C.ADMISSION_METHOD,
                        "code": "21",
                        "display": "Emergency Admission: Emergency Care Department or dental casualty "
                        "department of the Health Care Provider",
                    }
                ]
            },
            "dischargeDisposition": {
                "coding": [{"system": C.DISCHARGE_METHOD, "code": method[0], "display": method[1]}]
            },
        }
    }
    enc = rec.encounter(
        "IMP",
        C.HOSPITAL_ADMISSION,
        start,
        instant(end_day, rng.randrange(10 * 60, 18 * 60)),
        who=rec.clinician("Consultant"),
        reason=e.reason.code if e.reason else None,
        service=e.service,
        extra=extra,
    )
    diagnosis = None
    if e.reason is not None:
        diagnosis = rec.condition(e.reason.code, e.reason.onset, category="encounter-diagnosis", encounter=enc)
    if e.procedure is not None:
        when = instant(e.day + timedelta(days=min(1, e.nights)), rng.randrange(8 * 60, 17 * 60))
        rec.procedure(e.procedure, when, encounter=enc, reason=diagnosis)
    egfr = (
        rng.randint(*health.get("ckd").egfr)
        if health.get("ckd")
        else round(  # type: ignore[union-attr,misc]
            max(55, min(120, 105 - 0.7 * max(0, person.age - 30) + rng.gauss(0, 9)))
        )
    )
    rec.observation(
        C.EGFR,
        instant(e.day, rng.randrange(0, 24 * 60)),
        category="laboratory",
        encounter=enc,
        value=quantity(egfr, "mL/min/{1.73_m2}", "mL/min/1.73m2"),
    )
    if e.died:
        return
    meds = ", ".join(m.code.display for m in health.repeats()) or "none"
    text = (
        f"DISCHARGE SUMMARY\nPatient: {person.given} {person.family}\nAdmitted: {e.day.isoformat()} "
        f"Discharged: {end_day.isoformat()}\nSpecialty: {e.service[1]}\n"
        f"Diagnosis: {e.reason.code.display if e.reason else 'Symptoms resolved, no cause found'}\n"
        f"Procedures: {e.procedure.display if e.procedure else 'none'}\nMedicines on discharge: {meds}\n"
        f"GP actions: review in 2 weeks."
    )
    rec.document(C.DISCHARGE_SUMMARY, end_day, text, encounter=enc)


def _outpatient(rec: Record, person: Person, health: Health, e: HospitalEvent) -> None:
    rng = rec.rng
    visits = [e.day] + [e.day + timedelta(days=rng.randrange(60, 240) * k) for k in range(1, rng.randrange(1, 4))]
    who = rec.clinician("Consultant")
    for n, day in enumerate(v for v in visits if v <= person.reference_date):
        minutes = rng.randrange(9 * 60, 16 * 60)
        enc = rec.encounter(
            "AMB",
            C.CONSULTATION,
            instant(day, minutes),
            instant(day, minutes + 20),
            who=who,
            reason=e.reason.code if e.reason else None,
            service=e.service,
        )
        if n == 0 and e.reason is not None:
            rec.condition(e.reason.code, e.reason.onset, category="encounter-diagnosis", encounter=enc)
            text = (
                f"CLINIC LETTER ({e.service[1]})\nSeen today in clinic regarding "
                f"{e.reason.code.display.lower()}. Examination and investigations reviewed. Plan: continue "
                f"current treatment; follow up in clinic.\n{who.prefix} {who.given} {who.family}"
            )
            rec.document(C.CONSULT_NOTE, day, text, encounter=enc, author=who)
    if person.alive and rng.random() < 0.3:
        day = person.reference_date + timedelta(days=rng.randrange(7, 120))
        rec.appointment(
            instant(day, rng.randrange(18, 32) * 30),
            20,
            status="booked",
            description=f"{e.service[1]} follow-up",
            who=who,
            service=e.service,
        )


def _pathway(rec: Record, person: Person, e: HospitalEvent) -> None:
    """An elective (RTT) pathway: open and waiting, or closed by treatment."""
    rng = rec.rng
    assert e.procedure is not None
    clock_start = e.day - timedelta(weeks=e.weeks)
    status = ("20", "Subsequent activity, clock still running") if e.open else ("30", "First definitive treatment")
    identifier = {
        "system": f"https://sharedcare.example/{rec.org.ods}/Id/patient-pathway",
        "value": f"{rec.org.ods}{rec.patient_id[-8:]}{rng.randrange(100, 999)}",
    }
    extension = [
        {
            "url": "https://sharedcare.example/StructureDefinition/rtt-period-status",
            "valueCoding": {"system": C.RTT_STATUS, "code": status[0], "display": status[1]},
        }
    ]
    sr = rec.service_request(
        e.procedure,
        clock_start,
        status="active" if e.open else "completed",
        service=e.service,
        performer=rec.org.reference(),
        priority="urgent" if rng.random() < 0.15 else "routine",
        identifier=identifier,
        extension=extension,
        requester=rec.clinician("Consultant").reference(),
        note=f"Elective waiting list entry; referral to treatment clock started {clock_start.isoformat()}",
    )
    if e.open:
        if rng.random() < 0.4:
            day = person.reference_date + timedelta(days=rng.randrange(7, 180))
            rec.appointment(
                instant(day, rng.randrange(16, 34) * 30),
                30,
                status="booked",
                description=f"{e.service[1]} pre-operative assessment",
                service=e.service,
                based_on=sr,
            )
        return
    start = instant(e.day, 8 * 60)
    extra = {
        "hospitalization": {
            "admitSource": {
                "coding": [{"system": C.ADMISSION_METHOD, "code": "11", "display": "Elective Admission: Waiting list"}]
            }
        }
    }
    enc = rec.encounter(
        "IMP",
        C.HOSPITAL_ADMISSION,
        start,
        instant(e.day + timedelta(days=rng.randrange(0, 4)), 17 * 60),
        who=rec.clinician("Consultant"),
        service=e.service,
        extra=extra,
    )
    rec.procedure(e.procedure, instant(e.day, 10 * 60), encounter=enc)


def _ivf(rec: Record, e: HospitalEvent) -> None:
    assert e.procedure is not None
    enc = rec.encounter(
        "AMB",
        C.CONSULTATION,
        instant(e.day, 9 * 60),
        instant(e.day, 11 * 60),
        service=e.service,
        extra={"meta": restricted("SEX")},
    )
    rec.procedure(e.procedure, instant(e.day, 10 * 60), encounter=enc, meta=restricted("SEX"))


# --- community services -----------------------------------------------------------------------------------
def _needs_community(person: Person, health: Health, rng: Random) -> bool:
    if person.age < 18:
        return rng.random() < 0.01
    chance = 0.02
    if health.has("housebound"):
        chance = 0.6
    elif efi_category(health.efi()) in ("moderate", "severe"):
        chance = 0.3
    elif health.has("heart_failure") or health.has("copd") or health.has("reduced_mobility"):
        chance = 0.15
    return rng.random() < chance


def _community(ctx: FeedContext, person: Person, health: Health, org: Organisation) -> OrgRecord:
    ref = person.reference_date
    rec = _start(ctx, person, org, ref, _practice_on(person, ctx.region, ref))
    rng = rec.rng
    nurse = rec.clinician("District")
    visits = sorted(_days_before(ref, rng, 1, 365) for _ in range(rng.randrange(2, 13)))
    plan_code = C.Code(f"{C.LOCAL}/community-care-plan", "DN-PLAN", "District nursing care plan")
    rec.care_plan(
        "District nursing care plan",
        plan_code,
        visits[0],
        "Home visits for long-term condition monitoring, medicines support and pressure area care.",
        activities=("Home visit every 2-4 weeks", "Pressure area care", "Medicines support"),
    )
    weight = round(max(38.0, rng.gauss(72, 14)), 1)
    for day in visits:
        if day <= person.birth_date:
            continue
        minutes = rng.randrange(9 * 60, 17 * 60)
        enc = rec.encounter("HH", C.HOME_VISIT, instant(day, minutes), instant(day, minutes + 40), who=nurse)
        if rng.random() < 0.5:
            rec.blood_pressure(
                instant(day, minutes + 10),
                *_bp(person, health, rng, treated=True),
                encounter=enc,
                performer=nurse.reference(),
            )
        if rng.random() < 0.3:
            weight = round(weight + rng.gauss(-0.2, 0.8), 1)
            rec.observation(
                C.WEIGHT,
                instant(day, minutes + 15),
                value=quantity(weight, "kg", "kg"),
                encounter=enc,
                performer=nurse.reference(),
            )
    return _done(rec, person)


# --- mental health trust -----------------------------------------------------------------------------------
def _needs_mental_health(health: Health, rng: Random) -> bool:
    depression, dementia = health.get("depression"), health.get("dementia")
    return bool((depression and rng.random() < 0.1) or (dementia and rng.random() < 0.6))


def _mental_health(ctx: FeedContext, person: Person, health: Health, org: Organisation) -> OrgRecord:
    ref = person.reference_date
    dementia = health.get("dementia")
    reason = dementia if dementia else health.get("depression")
    assert reason is not None
    first = max(reason.onset, _days_before(ref, person_rng(ctx.seed, person.index, "mh-dates"), 30, 3 * 365))
    rec = _start(ctx, person, org, ref, _practice_on(person, ctx.region, ref))
    rng = rec.rng
    who = rec.clinician("Consultant old age" if dementia else "Consultant psychiatrist")
    service = ("710", "Adult Mental Illness")
    days = [first] + sorted(_days_before(ref, rng, 1, max(2, (ref - first).days)) for _ in range(rng.randrange(0, 4)))
    enc_ids = []
    for day in days:
        minutes = rng.randrange(9 * 60, 16 * 60)
        klass = "HH" if dementia and rng.random() < 0.4 else "AMB"
        enc_ids.append(
            rec.encounter(
                klass,
                C.CONSULTATION,
                instant(day, minutes),
                instant(day, minutes + 50),
                who=who if day == first else rec.clinician("Community"),
                reason=reason.code,
                service=service,
            )
        )
    dx = rec.condition(reason.code, reason.onset, category="encounter-diagnosis", encounter=enc_ids[0])
    plan = C.Code(f"{C.LOCAL}/mental-health-care-plan", "CARE-PLAN", "Mental health care and crisis plan")
    rec.care_plan(
        "Care and crisis plan",
        plan,
        first,
        "What helps when things get difficult, early warning signs, "
        "who to contact in a crisis (including out of hours).",
        addresses=dx,
        activities=("Care coordinator contact every 4 weeks", "Crisis line number given"),
    )
    text = (
        f"ASSESSMENT LETTER\n{person.title} {person.family} was assessed on {first.isoformat()} for "
        f"{reason.code.display.lower()}. Risk assessment completed. Plan agreed and shared with GP."
    )
    rec.document(C.CONSULT_NOTE, first, text, encounter=enc_ids[0], author=who)
    return _done(rec, person)


# --- council adult social care --------------------------------------------------------------------------
def _needs_social_care(person: Person, health: Health, rng: Random) -> bool:
    if person.age < 18:
        return False
    if person.age >= 65:
        frail = efi_category(health.efi()) in ("moderate", "severe")
        needs = frail or any(health.has(k) for k in ("housebound", "has_caregiver", "dementia"))
        return rng.random() < (0.45 if needs else 0.01)
    return rng.random() < (0.25 if health.has("disability") else 0.003)


def _council(ctx: FeedContext, person: Person, health: Health, org: Organisation) -> OrgRecord:
    ref = person.reference_date
    rng0 = person_rng(ctx.seed, person.index, "council-dates")
    assessed = _days_before(ref, rng0, 20, 4 * 365)
    rec = _start(
        ctx, person, org, max(assessed, _days_before(ref, rng0, 1, 200)), _practice_on(person, ctx.region, ref)
    )
    rng = rec.rng
    worker = rec.clinician("Social")
    minutes = rng.randrange(9 * 60, 16 * 60)
    enc = rec.encounter(
        "HH", C.CARE_ACT_ASSESSMENT, instant(assessed, minutes), instant(assessed, minutes + 90), who=worker
    )
    support = "Physical support: personal care" if not health.has("dementia") else "Support with memory and cognition"
    services = rng.sample(C.SUPPORT_SERVICES[:4], rng.randrange(1, 3))
    if health.has("housebound") and rng.random() < 0.1:
        services = [C.SUPPORT_SERVICES[4]]
    rec.questionnaire_response(
        "care-act-assessment",
        assessed,
        [
            ("primary-support-reason", "Primary support reason", support),
            ("eligible", "Eligible needs under the Care Act 2014", "Yes" if rng.random() < 0.85 else "No"),
            ("carer", "Has an informal carer", "Yes" if health.has("has_caregiver") else "No"),
            ("outcome", "Outcome", "Long-term support: " + ", ".join(s.display for s in services)),
        ],
        encounter=enc,
    )
    plan_code = C.Code(f"{C.LOCAL}/social-care-plan", "CSP", "Care and support plan")
    hours = rng.randrange(3, 22)
    rec.care_plan(
        "Care and support plan",
        plan_code,
        assessed,
        f"Personal budget plan; {hours} hours of support a week.",
        activities=tuple(s.display for s in services),
    )
    review = assessed + timedelta(days=365)
    if review < ref:
        rec.encounter("HH", C.CARE_REVIEW, instant(review, minutes), instant(review, minutes + 60), who=worker)
    if rng.random() < 0.04:
        rec.flag(C.SAFEGUARDING_REFERRAL, _days_before(ref, rng, 10, 700), meta=restricted("SDV"))
    return _done(rec, person)
