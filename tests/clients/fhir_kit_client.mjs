// Drives sharedcare with the npm fhir-kit-client: CRUD, history, conditional create, transaction, patch, search.
// Usage: node fhir_kit_client.mjs http://127.0.0.1:PORT/fhir   (exits non-zero on the first failed check)
import assert from 'node:assert/strict';
import { Client } from 'fhir-kit-client';

const c = new Client({ baseUrl: process.argv[2] });
const ident = { system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9990000034' };

const md = await c.capabilityStatement();
assert.equal(md.fhirVersion, '4.0.1');
const p = await c.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'Kit' }] } });
const r = await c.read({ resourceType: 'Patient', id: p.id });
assert.equal(r.name[0].family, 'Kit');
r.gender = 'other';
assert.equal((await c.update({ resourceType: 'Patient', id: p.id, body: r })).meta.versionId, '2');
assert.equal((await c.history({ resourceType: 'Patient', id: p.id })).total, 2);
assert.equal((await c.vread({ resourceType: 'Patient', id: p.id, version: '1' })).meta.versionId, '1');
const cond = { resourceType: 'Patient', body: { resourceType: 'Patient', identifier: [ident] },
  options: { headers: { 'If-None-Exist': `identifier=${ident.system}|${ident.value}` } } };
const first = await c.create(cond);
const second = await c.create(cond);
assert.equal(first.id, second.id);
const urn = 'urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a';
const t = await c.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: [
  { fullUrl: urn, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
  { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: urn } },
    request: { method: 'POST', url: 'Observation' } }] } });
assert.deepEqual(t.entry.map((e) => e.response.status), ['201 Created', '201 Created']);
assert.equal(t.entry[1].resource.subject.reference, `Patient/${t.entry[0].resource.id}`);
const patched = await c.patch({ resourceType: 'Patient', id: p.id, jsonPatch: [{ op: 'replace', path: '/gender', value: 'male' }] });
assert.equal(patched.gender, 'male');
await c.delete({ resourceType: 'Patient', id: p.id });
await assert.rejects(c.read({ resourceType: 'Patient', id: p.id }), (e) => e.response.status === 410);
const s = await c.search({ resourceType: 'Patient', searchParams: { identifier: `${ident.system}|${ident.value}` } });
assert.equal(s.total, 1);
console.log('fhir-kit-client: all checks passed');
