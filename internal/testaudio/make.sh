#!/usr/bin/env bash
# Regenerates the committed test clips with espeak-ng (Mandarin, cmn-latn-pinyin) and sox:
# 16 kHz mono s16 WAV. Voice m2 is one of the training voices of the phrase spotter: these clips
# test that the pipeline works, not how well the spotter generalises (proctor eval audio does).
set -euo pipefail
cd "$(dirname "$0")"
say() { # file text
  espeak-ng -v cmn-latn-pinyin+m2 -p 50 -s 190 --stdout "$2" |
    sox -V1 -t wav - -r 16000 -b 16 -c 1 "$1" silence 1 0.02 0.3% reverse silence 1 0.02 0.3% reverse
}
say answer.wav "我认为关键在于提高群众的积极性"
say phrase.wav "该题回答完毕"
say chatter.wav "喂你听得到吗，第二题的答案是什么，快告诉我"
soxi -D answer.wav phrase.wav chatter.wav
