// Reads an .xlsx with Apache POI and writes what POI sees, for tests/readers/poi/__init__.py:
//   java -cp <poi jars>:<dir of Read.class> Read usermodel|streaming FILE.xlsx
//
// usermodel: XSSFWorkbook, the DOM reader most programs use.
// streaming: XSSFReader + XSSFSheetXMLHandler + a SheetContentsHandler, POI's SAX reader for
//            big files (the one that needs every cell's `r`).
//
// Output on stdout, ASCII JSON lines (anything past U+007E written as a JSON backslash-u escape
// of its UTF-16 unit, so surrogate pairs and odd characters cross unharmed):
//   {"sheets": [NAME, ...]}                first, every sheet's name in workbook order
//   {"sheet": NAME}                        a sheet starts (workbook order)
//   [ROW, [CELL, ...]]                     a row POI reported, ROW 1-based, cells from column A
//   {"note": TEXT}                         something a test should know (cell without `r`, ...)
// A CELL is null (no value), a number, a string, {"date": "YYYY-MM-DD"} (a number whose format is
// a date format, converted with POI's DateUtil, which counts Excel's fictitious 29 Feb 1900),
// {"datetime": "YYYY-MM-DDTHH:MM:SS"} when such a number has a time of day, or
// {"other": TEXT} for anything else (boolean, error, formula), so it shows up as a mismatch
// rather than being guessed at. Trailing nulls are trimmed.
import java.io.BufferedWriter;
import java.io.File;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.TimeZone;

import org.apache.poi.ooxml.util.SAXHelper;
import org.apache.poi.openxml4j.opc.OPCPackage;
import org.apache.poi.openxml4j.opc.PackageAccess;
import org.apache.poi.ss.usermodel.Cell;
import org.apache.poi.ss.usermodel.CellType;
import org.apache.poi.ss.usermodel.DataFormatter;
import org.apache.poi.ss.usermodel.DateUtil;
import org.apache.poi.ss.usermodel.Row;
import org.apache.poi.ss.util.CellReference;
import org.apache.poi.xssf.eventusermodel.ReadOnlySharedStringsTable;
import org.apache.poi.xssf.eventusermodel.XSSFReader;
import org.apache.poi.xssf.eventusermodel.XSSFSheetXMLHandler;
import org.apache.poi.xssf.model.StylesTable;
import org.apache.poi.xssf.usermodel.XSSFComment;
import org.apache.poi.xssf.usermodel.XSSFSheet;
import org.apache.poi.xssf.usermodel.XSSFWorkbook;
import org.openxmlformats.schemas.spreadsheetml.x2006.main.CTWorkbook;
import org.openxmlformats.schemas.spreadsheetml.x2006.main.WorkbookDocument;
import org.xml.sax.Attributes;
import org.xml.sax.InputSource;
import org.xml.sax.SAXException;
import org.xml.sax.XMLReader;

public final class Read {
    private static final TimeZone UTC = TimeZone.getTimeZone("UTC");
    private final Writer out;

    private Read(Writer out) {
        this.out = out;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !(args[0].equals("usermodel") || args[0].equals("streaming"))) {
            System.err.println("usage: Read usermodel|streaming FILE.xlsx");
            System.exit(2);
        }
        Writer w = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.US_ASCII), 1 << 16);
        Read read = new Read(w);
        File file = new File(args[1]);
        if (args[0].equals("usermodel")) {
            read.usermodel(file);
        } else {
            read.streaming(file);
        }
        w.flush();
    }

    // ---- usermodel ------------------------------------------------------------------------

    private void usermodel(File file) throws Exception {
        try (OPCPackage pkg = OPCPackage.open(file, PackageAccess.READ);
             XSSFWorkbook wb = new XSSFWorkbook(pkg)) {
            boolean date1904 = wb.isDate1904();
            List<String> names = new ArrayList<>();
            for (int s = 0; s < wb.getNumberOfSheets(); s++) {
                names.add(wb.getSheetName(s));
            }
            sheets(names);
            for (int s = 0; s < wb.getNumberOfSheets(); s++) {
                XSSFSheet sheet = wb.getSheetAt(s);
                sheet(sheet.getSheetName());
                for (Row row : sheet) {
                    List<Object> cells = new ArrayList<>();
                    for (int c = 0; c < row.getLastCellNum(); c++) {
                        cells.add(usermodelCell(row.getCell(c), date1904));
                    }
                    row(row.getRowNum() + 1, cells);
                }
            }
        }
    }

    private Object usermodelCell(Cell cell, boolean date1904) {
        if (cell == null) {
            return null;
        }
        CellType type = cell.getCellType();
        switch (type) {
            case BLANK:
                return null;
            case STRING:
                return cell.getStringCellValue();
            case NUMERIC: {
                double v = cell.getNumericCellValue();
                if (DateUtil.isCellDateFormatted(cell)) {
                    return date(v, date1904);
                }
                return v;
            }
            case FORMULA:
                return new Other("formula " + cell.getCellFormula());
            default:
                return new Other(type + " " + cell);
        }
    }

    // ---- streaming ------------------------------------------------------------------------

    private void streaming(File file) throws Exception {
        try (OPCPackage pkg = OPCPackage.open(file, PackageAccess.READ)) {
            XSSFReader reader = new XSSFReader(pkg);
            ReadOnlySharedStringsTable strings = new ReadOnlySharedStringsTable(pkg);
            StylesTable styles = reader.getStylesTable();
            boolean date1904;
            try (InputStream wbXml = reader.getWorkbookData()) {
                CTWorkbook wb = WorkbookDocument.Factory.parse(wbXml).getWorkbook();
                date1904 = wb.isSetWorkbookPr() && wb.getWorkbookPr().getDate1904();
            }
            List<String> names = new ArrayList<>();
            XSSFReader.SheetIterator sheets = (XSSFReader.SheetIterator) reader.getSheetsData();
            while (sheets.hasNext()) {
                sheets.next().close();
                names.add(sheets.getSheetName());
            }
            sheets(names);
            sheets = (XSSFReader.SheetIterator) reader.getSheetsData();
            while (sheets.hasNext()) {
                try (InputStream xml = sheets.next()) {
                    sheet(sheets.getSheetName());
                    Contents contents = new Contents(date1904);
                    RawFormatter formatter = new RawFormatter();
                    Typed handler = new Typed(styles, strings, contents, formatter);
                    contents.handler = handler;
                    contents.formatter = formatter;
                    XMLReader parser = SAXHelper.newXMLReader();
                    parser.setContentHandler(handler);
                    parser.parse(new InputSource(xml));
                    contents.flush();
                }
            }
        }
    }

    /** Keeps what POI's handler does not pass on: the raw number and its format. */
    private static final class RawFormatter extends DataFormatter {
        double value;
        int formatIndex;
        String formatString;
        boolean used;

        @Override
        public String formatRawCellContents(double value, int formatIndex, String formatString) {
            this.value = value;
            this.formatIndex = formatIndex;
            this.formatString = formatString;
            this.used = true;
            return super.formatRawCellContents(value, formatIndex, formatString);
        }
    }

    /** POI's own handler; only notes each <c>'s `t` so a number is not mistaken for text. */
    private static final class Typed extends XSSFSheetXMLHandler {
        String cellType;
        boolean formula;

        Typed(StylesTable styles, ReadOnlySharedStringsTable strings, SheetContentsHandler contents,
              DataFormatter formatter) {
            super(styles, null, strings, contents, formatter, false);
        }

        @Override
        public void startElement(String uri, String localName, String qName, Attributes attributes)
                throws SAXException {
            if ("c".equals(localName)) {
                cellType = attributes.getValue("t");
                formula = false;
            } else if ("f".equals(localName)) {
                formula = true;
            }
            super.startElement(uri, localName, qName, attributes);
        }
    }

    /**
     * The SheetContentsHandler a program writes: it places each value at the reference POI hands
     * it. POI hands null when the cell has no `r`; then, like XSSFCell, the cell goes one column
     * right of the previous one, and a note says so.
     */
    private final class Contents implements XSSFSheetXMLHandler.SheetContentsHandler {
        final boolean date1904;
        Typed handler;
        RawFormatter formatter;
        int rowNum = -1;
        int lastCol = -1;
        List<Object> cells = new ArrayList<>();
        long missingRefs;
        long repeated;

        Contents(boolean date1904) {
            this.date1904 = date1904;
        }

        @Override
        public void startRow(int rowNum) {
            this.rowNum = rowNum;
            this.lastCol = -1;
            this.cells = new ArrayList<>();
        }

        @Override
        public void endRow(int rowNum) {
            try {
                row(rowNum + 1, cells);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }

        @Override
        public void cell(String ref, String formatted, XSSFComment comment) {
            int col;
            if (ref == null) {
                missingRefs++;
                col = lastCol + 1;
            } else {
                col = new CellReference(ref).getCol();
            }
            if (col == lastCol) {
                repeated++;
            }
            lastCol = col;
            Object value = value(formatted);
            while (cells.size() <= col) {
                cells.add(null);
            }
            cells.set(col, value);
        }

        private Object value(String formatted) {
            String t = handler.cellType;
            boolean number = t == null || t.equals("n");
            if (handler.formula || !number) {
                formatter.used = false;
                if (handler.formula) {
                    return new Other("formula, cached " + formatted);
                }
                if (t.equals("s") || t.equals("inlineStr")) {
                    return formatted;
                }
                return new Other("t=" + t + " " + formatted);
            }
            double v;
            int formatIndex = -1;
            String formatString = null;
            if (formatter.used) {
                v = formatter.value;
                formatIndex = formatter.formatIndex;
                formatString = formatter.formatString;
                formatter.used = false;
            } else {
                // No style table: POI passes the <v> text as it is.
                v = Double.parseDouble(formatted);
            }
            if (formatString != null && DateUtil.isADateFormat(formatIndex, formatString)) {
                return date(v, date1904);
            }
            return v;
        }

        void flush() throws Exception {
            if (missingRefs > 0) {
                note(missingRefs + " cells without a reference (r): placed one column right of the previous cell");
            }
            if (repeated > 0) {
                note(repeated + " cells reported twice at the same place (kept the last)");
            }
        }
    }

    // ---- output ---------------------------------------------------------------------------

    private static final class Other {
        final String text;

        Other(String text) {
            this.text = text;
        }
    }

    private static final class DateValue {
        final String key;
        final String text;

        DateValue(String key, String text) {
            this.key = key;
            this.text = text;
        }
    }

    private static Object date(double v, boolean date1904) {
        if (!DateUtil.isValidExcelDate(v)) {
            return v;
        }
        Date d = DateUtil.getJavaDate(v, date1904, UTC);
        boolean whole = v == Math.floor(v);
        SimpleDateFormat f = new SimpleDateFormat(whole ? "yyyy-MM-dd" : "yyyy-MM-dd'T'HH:mm:ss");
        f.setTimeZone(UTC);
        return new DateValue(whole ? "date" : "datetime", f.format(d));
    }

    private void sheets(List<String> names) throws Exception {
        out.write("{\"sheets\": [");
        for (int i = 0; i < names.size(); i++) {
            if (i > 0) {
                out.write(", ");
            }
            string(names.get(i));
        }
        out.write("]}\n");
    }

    private void sheet(String name) throws Exception {
        out.write("{\"sheet\": ");
        string(name);
        out.write("}\n");
    }

    private void note(String text) throws Exception {
        out.write("{\"note\": ");
        string(text);
        out.write("}\n");
    }

    private void row(int number, List<Object> cells) throws Exception {
        int n = cells.size();
        while (n > 0 && cells.get(n - 1) == null) {
            n--;
        }
        out.write('[');
        out.write(Integer.toString(number));
        out.write(", [");
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                out.write(", ");
            }
            value(cells.get(i));
        }
        out.write("]]\n");
    }

    private void value(Object v) throws Exception {
        if (v == null) {
            out.write("null");
        } else if (v instanceof Double) {
            double d = (Double) v;
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                out.write("{\"other\": ");
                string(Double.toString(d));
                out.write('}');
            } else if (d == Math.rint(d) && Math.abs(d) < 9.007199254740992E15) {
                out.write(Long.toString((long) d));
            } else {
                out.write(Double.toString(d));  // round-trips; a JSON number
            }
        } else if (v instanceof String) {
            string((String) v);
        } else if (v instanceof DateValue) {
            DateValue d = (DateValue) v;
            out.write("{\"" + d.key + "\": ");
            string(d.text);
            out.write('}');
        } else if (v instanceof Other) {
            out.write("{\"other\": ");
            string(((Other) v).text);
            out.write('}');
        } else {
            out.write("{\"other\": ");
            string(String.valueOf(v));
            out.write('}');
        }
    }

    private void string(String s) throws Exception {
        out.write('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                out.write('\\');
                out.write(c);
            } else if (c >= 0x20 && c < 0x7f) {
                out.write(c);
            } else {
                out.write(String.format("\\u%04x", (int) c));
            }
        }
        out.write('"');
    }
}
