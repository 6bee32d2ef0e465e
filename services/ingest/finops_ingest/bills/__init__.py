"""Provider billing exports (AWS CUR legacy and 2.0, Azure cost details, GCP BigQuery billing export, OCI cost
reports, and FOCUS files themselves) as FOCUS-named Arrow tables of exact text, ready to validate and type.

    fmt = detect(path)                 # "aws-cur2", "azure-actual", ... (see FORMATS)
    for table in read_bill(path):      # all pa.string() columns, x_SourceRow = 1-based source row
        ...

Money is never a float: decimals keep the source's digits, computed amounts are Decimal arithmetic.
"""

from finops_ingest.bills.detect import FORMATS, detect
from finops_ingest.bills.errors import BillFormatError
from finops_ingest.bills.reader import SOURCE_ROW, read_bill

__all__ = ["FORMATS", "SOURCE_ROW", "BillFormatError", "detect", "read_bill"]
