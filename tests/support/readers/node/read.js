#!/usr/bin/env node
// Reads an .xlsx with one Node library and writes what it sees, for tests/readers/node.py:
//   node read.js exceljs|exceljs-stream|sheetjs FILE.xlsx OUTDIR
// OUTDIR/<n>.jsonl holds sheet n's rows (0-based n, workbook order), one JSON array per sheet
// row from row 1: a number or string as the library gives it, null for no value, a date cell
// as {"date": "YYYY-MM-DD"} (read in UTC: run with TZ=UTC). Any other value is written as
// {"other": ...} so it shows up as a mismatch rather than being guessed at. The sheet names go
// to stdout as one JSON array, last, once every sheet is written.
'use strict';

const fs = require('fs');
const path = require('path');

const [engine, file, outdir] = process.argv.slice(2);

function cell(value) {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number' || typeof value === 'string') return value;
  if (value instanceof Date) return {date: value.toISOString().slice(0, 10)};
  // ExcelJS gives rich text as runs: the cell's text is their concatenation.
  if (Array.isArray(value.richText)) return value.richText.map(run => run.text).join('');
  return {other: value};
}

class SheetWriter {
  constructor(index) {
    this.fd = fs.openSync(path.join(outdir, `${index}.jsonl`), 'w');
    this.lines = [];
    this.rows = 0;
  }

  // ``number``: the 1-based sheet row; rows a reader skips are written empty.
  row(number, values) {
    while (this.rows < number - 1) this.push([]);
    this.push(values.map(cell));
  }

  push(cells) {
    this.lines.push(JSON.stringify(cells));
    this.rows += 1;
    if (this.lines.length >= 10000) this.flush();
  }

  flush() {
    if (this.lines.length) fs.writeSync(this.fd, this.lines.join('\n') + '\n');
    this.lines = [];
  }

  close() {
    this.flush();
    fs.closeSync(this.fd);
  }
}

// ExcelJS row.values is 1-based (index 0 unused).
const excelCells = row => Array.from({length: Math.max(row.values.length - 1, 0)}, (_, i) => row.values[i + 1]);

async function excelJs() {
  const ExcelJS = require('exceljs');
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.readFile(file);
  return workbook.worksheets.map((sheet, index) => {
    const out = new SheetWriter(index);
    sheet.eachRow({includeEmpty: false}, (row, number) => out.row(number, excelCells(row)));
    out.close();
    return sheet.name;
  });
}

async function excelJsStream() {
  const ExcelJS = require('exceljs');
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(file, {
    worksheets: 'emit', sharedStrings: 'cache', styles: 'cache', hyperlinks: 'ignore', entries: 'ignore',
  });
  const names = [];
  for await (const sheet of reader) {
    const out = new SheetWriter(names.length);
    for await (const row of sheet) out.row(row.number, excelCells(row));
    out.close();
    names.push(sheet.name);
  }
  return names;
}

async function sheetJs() {
  const XLSX = require('xlsx');
  const workbook = XLSX.readFile(file, {cellDates: true, dense: true, WTF: true});
  return workbook.SheetNames.map((name, index) => {
    const out = new SheetWriter(index);
    const sheet = workbook.Sheets[name];
    const start = XLSX.utils.decode_range(sheet['!ref']).s; // rows and columns before it are empty
    const rows = XLSX.utils.sheet_to_json(sheet, {header: 1, raw: true, defval: null, blankrows: true});
    rows.forEach((values, i) => out.row(start.r + i + 1, Array(start.c).fill(null).concat(values)));
    out.close();
    return name;
  });
}

const engines = {'exceljs': excelJs, 'exceljs-stream': excelJsStream, 'sheetjs': sheetJs};

engines[engine]().then(
  names => process.stdout.write(JSON.stringify(names) + '\n'),
  error => {
    process.stderr.write(`${error && error.stack || error}\n`);
    process.exit(1);
  },
);
