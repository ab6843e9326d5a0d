"""Builders for one organisation's record of one person: each resource points at that organisation's own Patient,
its Organization and its Practitioners, and gets an id derived from the local patient id (unique per server)."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta
from random import Random

from sharedcare.generate.codes import (
    BP_PANEL,
    DIASTOLIC,
    LOCAL,
    SYSTOLIC,
    TREATMENT_FUNCTION,
    UCUM,
    V3_ACT,
    V3_CONFIDENTIALITY,
    Code,
)
from sharedcare.generate.organisations import Organisation, Practitioner
from sharedcare.types import JSON

CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
SENSITIVITY = {
    "STD": "sexually transmitted disease information sensitivity",
    "SEX": "sexuality and reproductive health information sensitivity",
    "SDV": "sexual assault, abuse, or domestic violence information sensitivity",
}


def instant(day: date, minutes: int = 9 * 60) -> str:
    """A FHIR dateTime at `minutes` past midnight UTC on `day`."""
    moment = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:00+00:00")


def restricted(*sensitivity: str) -> JSON:
    """meta.security as the source system marks an item: v3 confidentiality R plus any sensitivity label."""
    labels = [{"system": V3_CONFIDENTIALITY, "code": "R", "display": "restricted"}]
    labels += [{"system": V3_ACT, "code": s, "display": SENSITIVITY[s]} for s in sensitivity]
    return {"security": labels}


def specialty(code: str, display: str) -> JSON:
    return {"coding": [{"system": TREATMENT_FUNCTION, "code": code, "display": display}], "text": display}


class Record:
    """One organisation's resources about one person, in the order the source would send them."""

    def __init__(self, org: Organisation, patient_id: str, rng: Random, person_key: str | None = None) -> None:
        self.org, self.patient_id, self.rng, self.person_key = org, patient_id, rng, person_key
        self.patient = {"reference": f"Patient/{patient_id}"}
        self.resources: list[JSON] = []
        self._n = 0

    def _id(self) -> str:
        self._n += 1
        return f"{self.patient_id}-{self._n}"

    def add(self, resource: JSON) -> str:
        resource["id"] = rid = self._id()
        self.resources.append(resource)
        return rid

    def clinician(self, role: str = "") -> Practitioner:
        return self.rng.choice(self.org.staff(role))

    # --- the resources ------------------------------------------------------------------------------
    def encounter(
        self,
        klass: str,
        kind: Code,
        start: str,
        end: str,
        *,
        who: Practitioner | None = None,
        reason: Code | None = None,
        service: tuple[str, str] | None = None,
        status: str = "finished",
        extra: JSON | None = None,
    ) -> str:
        res: JSON = {
            "resourceType": "Encounter",
            "status": status,
            "class": {"system": V3_ACT, "code": klass, "display": _CLASS[klass]},
            "type": [kind.concept()],
            "subject": self.patient,
            "participant": [{"individual": (who or self.clinician()).reference()}],
            "period": {"start": start, "end": end} if status == "finished" else {"start": start},
            "serviceProvider": self.org.reference(),
        }
        if service:
            res["serviceType"] = specialty(*service)
        if reason:
            res["reasonCode"] = [reason.concept()]
        if extra:
            res.update(extra)
        return self.add(res)

    def condition(
        self,
        code: Code,
        onset: date,
        *,
        category: str = "problem-list-item",
        status: str = "active",
        encounter: str | None = None,
        meta: JSON | None = None,
        abatement: date | None = None,
    ) -> str:
        res: JSON = {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status}]},
            "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": category}]}],
            "code": code.concept(),
            "subject": self.patient,
            "onsetDateTime": onset.isoformat(),
            "recordedDate": instant(onset, self.rng.randrange(8 * 60, 18 * 60)),
            "recorder": self.clinician().reference(),
        }
        if meta:
            res["meta"] = meta
        if encounter:
            res["encounter"] = {"reference": f"Encounter/{encounter}"}
        if status in ("resolved", "remission") and abatement:
            res["abatementDateTime"] = abatement.isoformat()
        return self.add(res)

    def observation(
        self,
        codes: tuple[Code, ...],
        when: str,
        *,
        value: JSON | None = None,
        category: str = "vital-signs",
        components: list[JSON] | None = None,
        encounter: str | None = None,
        performer: JSON | None = None,
        method: str | None = None,
    ) -> str:
        res: JSON = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category}]}],
            "code": {"coding": [c.coding() for c in codes], "text": codes[0].display},
            "subject": self.patient,
            "effectiveDateTime": when,
            "issued": when if "T" in when else instant(date.fromisoformat(when)),
            "performer": [performer or self.clinician().reference()],
        }
        if encounter:
            res["encounter"] = {"reference": f"Encounter/{encounter}"}
        if value:
            res.update(value)
        if components:
            res["component"] = components
        if method:
            res["method"] = {"text": method}
        return self.add(res)

    def blood_pressure(
        self,
        when: str,
        systolic: int,
        diastolic: int,
        *,
        encounter: str | None = None,
        codes: tuple[Code, ...] = BP_PANEL,
        performer: JSON | None = None,
        method: str | None = None,
    ) -> str:
        return self.observation(
            codes,
            when,
            encounter=encounter,
            performer=performer,
            method=method,
            components=[
                component(SYSTOLIC, systolic, "mm[Hg]", "mmHg"),
                component(DIASTOLIC, diastolic, "mm[Hg]", "mmHg"),
            ],
        )

    def medication_request(
        self,
        code: Code,
        authored: date,
        dosage: str,
        *,
        repeat: bool,
        status: str,
        reason: str | None = None,
    ) -> str:
        res: JSON = {
            "resourceType": "MedicationRequest",
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": code.concept(),
            "subject": self.patient,
            "authoredOn": instant(authored, self.rng.randrange(8 * 60, 18 * 60)),
            "requester": self.clinician("General").reference(),
            "courseOfTherapyType": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                        "code": "continuous" if repeat else "acute",
                    }
                ]
            },
            "dosageInstruction": [{"text": dosage}],
            "dispenseRequest": {
                "numberOfRepeatsAllowed": 5 if repeat else 0,
                "expectedSupplyDuration": {"value": 28 if repeat else 5, "unit": "day", "system": UCUM, "code": "d"},
            },
        }
        if reason:
            res["reasonReference"] = [{"reference": f"Condition/{reason}"}]
        return self.add(res)

    def allergy(self, code: Code, category: str | None, recorded: date, *, reaction: Code | None = None) -> str:
        res: JSON = {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                        "code": "confirmed",
                    }
                ]
            },
            "code": code.concept(),
            "patient": self.patient,
            "recordedDate": instant(recorded),
            "recorder": self.clinician().reference(),
        }
        if category:
            res["type"] = "allergy"
            res["category"] = [category]
        if reaction:
            res["reaction"] = [{"manifestation": [reaction.concept()], "severity": "mild"}]
        return self.add(res)

    def immunization(self, vaccine: Code, day: date) -> str:
        return self.add(
            {
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": vaccine.concept(),
                "patient": self.patient,
                "occurrenceDateTime": instant(day, self.rng.randrange(8 * 60, 17 * 60)),
                "primarySource": True,
                "performer": [{"actor": self.clinician("Practice nurse").reference()}],
            }
        )

    def procedure(
        self,
        code: Code,
        when: str,
        *,
        encounter: str | None = None,
        reason: str | None = None,
        meta: JSON | None = None,
        who: Practitioner | None = None,
    ) -> str:
        res: JSON = {
            "resourceType": "Procedure",
            "status": "completed",
            "code": code.concept(),
            "subject": self.patient,
            "performedDateTime": when,
            "performer": [{"actor": (who or self.clinician()).reference()}],
        }
        if meta:
            res["meta"] = meta
        if encounter:
            res["encounter"] = {"reference": f"Encounter/{encounter}"}
        if reason:
            res["reasonReference"] = [{"reference": f"Condition/{reason}"}]
        return self.add(res)

    def service_request(
        self,
        code: Code,
        authored: date,
        *,
        status: str,
        service: tuple[str, str],
        performer: JSON,
        priority: str = "routine",
        reason: Code | None = None,
        identifier: JSON | None = None,
        extension: list[JSON] | None = None,
        requester: JSON | None = None,
        note: str | None = None,
    ) -> str:
        res: JSON = {
            "resourceType": "ServiceRequest",
            "status": status,
            "intent": "order",
            "category": [specialty(*service)],
            "priority": priority,
            "code": code.concept(),
            "subject": self.patient,
            "authoredOn": instant(authored, self.rng.randrange(8 * 60, 18 * 60)),
            "requester": requester or self.clinician().reference(),
            "performer": [performer],
        }
        if identifier:
            res["identifier"] = [identifier]
        if extension:
            res["extension"] = extension
        if reason:
            res["reasonCode"] = [reason.concept()]
        if note:
            res["note"] = [{"text": note}]
        return self.add(res)

    def care_plan(
        self,
        title: str,
        category: Code,
        created: date,
        description: str,
        *,
        activities: tuple[str, ...] = (),
        addresses: str | None = None,
        status: str = "active",
    ) -> str:
        res: JSON = {
            "resourceType": "CarePlan",
            "status": status,
            "intent": "plan",
            "category": [category.concept()],
            "title": title,
            "description": description,
            "subject": self.patient,
            "period": {"start": created.isoformat()},
            "created": instant(created),
            "author": self.clinician().reference(),
        }
        if addresses:
            res["addresses"] = [{"reference": f"Condition/{addresses}"}]
        if activities:
            res["activity"] = [{"detail": {"status": "in-progress", "description": a}} for a in activities]
        return self.add(res)

    def document(
        self, kind: Code, day: date, text: str, *, encounter: str | None = None, author: Practitioner | None = None
    ) -> str:
        res: JSON = {
            "resourceType": "DocumentReference",
            "status": "current",
            "docStatus": "final",
            "type": kind.concept(),
            "subject": self.patient,
            "date": instant(day, self.rng.randrange(9 * 60, 18 * 60)),
            "author": [(author or self.clinician()).reference(), self.org.reference()],
            "custodian": self.org.reference(),
            "description": kind.display,
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "language": "en-GB",
                        "data": base64.b64encode(text.encode()).decode(),
                        "title": kind.display,
                        "creation": instant(day),
                    }
                }
            ],
        }
        if encounter:
            res["context"] = {"encounter": [{"reference": f"Encounter/{encounter}"}]}
        return self.add(res)

    def appointment(
        self,
        start: str,
        minutes: int,
        *,
        status: str,
        description: str,
        who: Practitioner | None = None,
        service: tuple[str, str] | None = None,
        based_on: str | None = None,
    ) -> str:
        begin = datetime.fromisoformat(start)
        res: JSON = {
            "resourceType": "Appointment",
            "status": status,
            "description": description,
            "start": start,
            "end": (begin + timedelta(minutes=minutes)).isoformat(),
            "minutesDuration": minutes,
            "participant": [
                {"actor": self.patient, "required": "required", "status": "accepted"},
                {"actor": (who or self.clinician()).reference(), "required": "required", "status": "accepted"},
            ],
        }
        if service:
            res["specialty"] = [specialty(*service)]
        if based_on:
            res["basedOn"] = [{"reference": f"ServiceRequest/{based_on}"}]
        return self.add(res)

    def flag(self, code: Code, start: date, *, meta: JSON | None = None) -> str:
        res: JSON = {
            "resourceType": "Flag",
            "status": "active",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                            "code": "safety",
                            "display": "Safety",
                        }
                    ]
                }
            ],
            "code": code.concept(),
            "subject": self.patient,
            "period": {"start": start.isoformat()},
            "author": self.clinician().reference(),
        }
        if meta:
            res["meta"] = meta
        return self.add(res)

    def questionnaire_response(
        self, questionnaire: str, day: date, items: list[tuple[str, str, str]], *, encounter: str | None = None
    ) -> str:
        res: JSON = {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": f"{LOCAL.replace('/CodeSystem', '/Questionnaire')}/{questionnaire}",
            "status": "completed",
            "subject": self.patient,
            "authored": instant(day, self.rng.randrange(9 * 60, 17 * 60)),
            "author": self.clinician().reference(),
            "item": [
                {"linkId": link, "text": text, "answer": [{"valueString": answer}]} for link, text, answer in items
            ],
        }
        if encounter:
            res["encounter"] = {"reference": f"Encounter/{encounter}"}
        return self.add(res)


_CLASS = {"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency", "HH": "home health", "VR": "virtual"}


def component(codes: tuple[Code, ...], value: float, ucum: str, unit: str) -> JSON:
    return {
        "code": {"coding": [c.coding() for c in codes]},
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum},
    }


def quantity(value: float, ucum: str, unit: str) -> JSON:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum}}
