#!/usr/bin/env node
// Compiles the test contracts in this folder with the npm `solc` package (offline, no downloads)
// and writes <Name>.json (abi + bytecode) beside each <Name>.sol.
//
//   node tests/contracts/compile.js          regenerate the JSON files
//   node tests/contracts/compile.js --check  exit 1 if a committed JSON file is out of date
'use strict';

const fs = require('fs');
const path = require('path');

const here = __dirname;
const solc = require(require.resolve('solc', { paths: [here, path.join(here, '..', '..')] }));

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

function main() {
  const check = process.argv.includes('--check');
  const files = fs.readdirSync(here).filter((f) => f.endsWith('.sol')).sort();
  const sources = {};
  for (const f of files) sources[f] = { content: fs.readFileSync(path.join(here, f), 'utf8') };

  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + '\n');
  if (errors.length) process.exit(1);

  let stale = 0;
  for (const f of files) {
    const name = path.basename(f, '.sol');
    const contract = (output.contracts[f] || {})[name];
    if (!contract) continue; // e.g. a file with only interfaces/libraries of other names
    const artifact = {
      contractName: name,
      sourceName: f,
      compiler: { version: solc.version(), settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion } },
      abi: contract.abi,
      bytecode: '0x' + contract.evm.bytecode.object,
      deployedBytecode: '0x' + contract.evm.deployedBytecode.object,
    };
    const text = JSON.stringify(artifact, null, 2) + '\n';
    const target = path.join(here, name + '.json');
    if (check) {
      const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
      if (current !== text) {
        process.stderr.write(`${name}.json is out of date: run node tests/contracts/compile.js\n`);
        stale += 1;
      }
    } else {
      fs.writeFileSync(target, text);
      process.stdout.write(`wrote ${path.relative(process.cwd(), target)}\n`);
    }
  }
  if (stale) process.exit(1);
}

main();
