// Khronos' glTF validator (npm gltf-validator) over the .glb files named on the command line: JSON reports.
import fs from 'node:fs';
import validator from 'gltf-validator';

const reports = {};
for (const file of process.argv.slice(2)) {
  const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), { maxIssues: 50 });
  reports[file] = {
    errors: report.issues.numErrors,
    warnings: report.issues.numWarnings,
    messages: report.issues.messages.filter((m) => m.severity <= 1),
  };
}
console.log(JSON.stringify(reports));
