#!/usr/bin/env python3
"""The peer baseline for scripts/bench: parses KIS real-time frames the way KIS's official Python samples do
(str.split on '|' and '^', a dict of named columns per record, numbers converted with int()/float()), over the same
frames file kis-bench parses. Prints one JSON object: records, seconds, records_per_s."""
import json
import sys
import time

# Column names as in the official samples (domestic trade H0STCNT0: 46 documented fields; H0STASP0: 62).
TRADE = ("MKSC_SHRN_ISCD STCK_CNTG_HOUR STCK_PRPR PRDY_VRSS_SIGN PRDY_VRSS PRDY_CTRT WGHN_AVRG_STCK_PRC STCK_OPRC "
         "STCK_HGPR STCK_LWPR ASKP1 BIDP1 CNTG_VOL ACML_VOL ACML_TR_PBMN SELN_CNTG_CSNU SHNU_CNTG_CSNU NTBY_CNTG_CSNU "
         "CTTR SELN_CNTG_SMTN SHNU_CNTG_SMTN CCLD_DVSN SHNU_RATE PRDY_VOL_VRSS_ACML_VOL_RATE OPRC_HOUR OPRC_VRSS_PRPR_SIGN "
         "OPRC_VRSS_PRPR HGPR_HOUR HGPR_VRSS_PRPR_SIGN HGPR_VRSS_PRPR LWPR_HOUR LWPR_VRSS_PRPR_SIGN LWPR_VRSS_PRPR "
         "BSOP_DATE NEW_MKOP_CLS_CODE TRHT_YN ASKP_RSQN1 BIDP_RSQN1 TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN VOL_TNRT "
         "PRDY_SMNS_HOUR_ACML_VOL PRDY_SMNS_HOUR_ACML_VOL_RATE HOUR_CLS_CODE MRKT_TRTM_CLS_CODE VI_STND_PRC").split()
BOOK = (["MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE"] + [f"ASKP{i}" for i in range(1, 11)]
        + [f"BIDP{i}" for i in range(1, 11)] + [f"ASKP_RSQN{i}" for i in range(1, 11)]
        + [f"BIDP_RSQN{i}" for i in range(1, 11)]
        + ("TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN OVTM_TOTAL_ASKP_RSQN OVTM_TOTAL_BIDP_RSQN ANTC_CNPR ANTC_CNQN ANTC_VOL "
           "ANTC_CNTG_VRSS ANTC_CNTG_VRSS_SIGN ANTC_CNTG_PRDY_CTRT ACML_VOL TOTAL_ASKP_RSQN_ICDC TOTAL_BIDP_RSQN_ICDC "
           "OVTM_TOTAL_ASKP_ICDC OVTM_TOTAL_BIDP_ICDC STCK_DEAL_CLS_CODE").split())


def parse_trade(values):
    d = dict(zip(TRADE, values))
    return {"symbol": d["MKSC_SHRN_ISCD"], "time": d["STCK_CNTG_HOUR"], "price": int(d["STCK_PRPR"]),
            "volume": int(d["CNTG_VOL"]), "change": int(d["PRDY_VRSS"]), "rate": float(d["PRDY_CTRT"]),
            "date": d["BSOP_DATE"]}


def parse_book(values):
    d = dict(zip(BOOK, values))
    return {"symbol": d["MKSC_SHRN_ISCD"], "time": d["BSOP_HOUR"],
            "asks": [(int(d[f"ASKP{i}"]), int(d[f"ASKP_RSQN{i}"])) for i in range(1, 11)],
            "bids": [(int(d[f"BIDP{i}"]), int(d[f"BIDP_RSQN{i}"])) for i in range(1, 11)]}


def main():
    path, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
    frames = [line.rstrip("\n") for line in open(path, encoding="utf-8") if line.strip()]
    records = 0
    start = time.perf_counter()
    for _ in range(rounds):
        for frame in frames:
            recvstr = frame.split("|")
            if recvstr[0] not in ("0", "1"):
                continue
            tr_id, count = recvstr[1], int(recvstr[2])
            values = recvstr[3].split("^")
            width = len(values) // count
            parse = parse_trade if tr_id == "H0STCNT0" else parse_book
            for i in range(count):
                parse(values[i * width:(i + 1) * width])
                records += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"bench": "python_reference", "records": records, "seconds": seconds, "records_per_s": records / seconds}))


if __name__ == "__main__":
    main()
