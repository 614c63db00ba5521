/* fe_profile_main.c -- where the audio frontend's instructions go on the Cortex-M4.
 *
 * Built by deploy/fe_profile.py instead of main.c (the model's export with the frontend,
 * QEMU mps2-an386 under -icount). Streams ETP_FE_PROF_UTTS utterances of a xorshift-noise
 * signal with a loud burst through etp_fe_push in 160-sample hops, then the finish and
 * etp_fe_input for every frame, and measures, in counter units: a hop (the frame's whole
 * work), each of the frame's steps alone on the same window (etp_fe_load, etp_fe_fft,
 * etp_fe_power, etp_fe_mel_log on a second etp_fe_t), the end of the utterance in its
 * slices (each etp_fe_pad_frame, then etp_fe_finish), and a frame's delta + input scaling
 * (frame 0 apart: it also turns the 9 frames its delta reads into L). Prints "T name value" lines (value x resolution,
 * per call, averaged; "max" lines for the largest) and "END". */
#include <stdint.h>
#include "etp_model.h"
#include "etp_frontend.h"
#include "etp_port.h"

#ifndef ETP_FE_PROF_UTTS
#define ETP_FE_PROF_UTTS 2
#endif

static etp_fe_t fe, step_fe;
static int16_t utt[ETP_FE_SAMPLES], w[ETP_FE_N_FFT], lm[ETP_FE_MELS];   /* static: the stack is 2 KB */

enum { ST_LOAD, ST_FFT, ST_POWER, ST_MEL, N_ST };
static const char *const st_name[N_ST] = {"load", "fft", "power", "mel_log"};

static void out(const char *s) { while (*s) port_write((const uint8_t *)s++, 1); }
static void outu(uint64_t v) {
    char b[24]; int i = 23; b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    out(b + i);
}
static void line(const char *name, uint64_t v) { out("T "); out(name); out(" "); outu(v); out("\n"); }

int main(int argc, char **argv) {
    uint32_t r = 12345, t0, c;
    uint64_t hop = 0, hop_max = 0, st[N_ST] = {0}, fin = 0, fin_rest = 0, pad_max = 0, overhead;
    uint64_t feat = 0, feat_max = 0, feat_first = 0;
    uint32_t nhop = 0, nst = 0, npad = 0;
    int16_t pcm[ETP_FE_HOP];
    etp_x_t x[ETP_FE_FEATURES];
    port_init(argc, argv);
    t0 = port_counter_now();
    overhead = port_counter_now() - t0;
    for (int u = 0; u < ETP_FE_PROF_UTTS; u++) {
        etp_fe_reset(&fe);
        for (int h = 0; h < ETP_FE_SAMPLES / ETP_FE_HOP; h++) {
            for (int i = 0; i < ETP_FE_HOP; i++) {
                r ^= r << 13; r ^= r >> 17; r ^= r << 5;
                int32_t amp = (h > 30 && h < 70) ? 20000 : 300;
                pcm[i] = (int16_t)((int32_t)(r % 2001u) - 1000) * amp / 1000;
                utt[h * ETP_FE_HOP + i] = pcm[i];
            }
            uint16_t before = fe.frames;
            t0 = port_counter_now();
            etp_fe_push(&fe, pcm, ETP_FE_HOP);
            c = port_counter_now() - t0 - (uint32_t)overhead;
            if (fe.frames != before) {
                hop += c; nhop++;
                if (c > hop_max) hop_max = c;
                /* each step alone, on this frame's window (samples 160 t - 240 .. 160 t + 239) */
                int32_t base = (int32_t)before * ETP_FE_HOP - ETP_FE_HALF, s;
                for (int i = 0; i < ETP_FE_N_FFT; i++)
                    w[i] = base + i >= 0 ? utt[base + i] : 0;
                t0 = port_counter_now();
                s = etp_fe_load(&step_fe.work, w);
                uint32_t load = port_counter_now() - t0 - (uint32_t)overhead;
                if (s == ETP_FE_SILENT) continue;          /* (none in this signal) */
                st[ST_LOAD] += load;
                t0 = port_counter_now();
                etp_fe_fft(step_fe.work.re, step_fe.work.im);
                st[ST_FFT] += port_counter_now() - t0 - (uint32_t)overhead;
                t0 = port_counter_now();
                etp_fe_power(&step_fe.work);
                st[ST_POWER] += port_counter_now() - t0 - (uint32_t)overhead;
                t0 = port_counter_now();
                etp_fe_mel_log(&step_fe.work, s, lm);
                st[ST_MEL] += port_counter_now() - t0 - (uint32_t)overhead;
                nst++;
            }
        }
        /* the finish in slices, as a real-time device runs it: each padded frame, then the rest */
        uint32_t fin_u = 0;
        while (fe.frames < ETP_FE_FRAMES) {
            t0 = port_counter_now();
            etp_fe_pad_frame(&fe);
            c = port_counter_now() - t0 - (uint32_t)overhead;
            fin_u += c;
            if (c > pad_max) pad_max = c;
            npad++;
        }
        t0 = port_counter_now();
        etp_fe_finish(&fe);
        c = port_counter_now() - t0 - (uint32_t)overhead;
        fin_u += c;
        fin += fin_u;
        fin_rest += c;
        for (uint16_t t = 0; t < ETP_FE_FRAMES; t++) {
            t0 = port_counter_now();
            etp_fe_input(&fe, t, x);
            c = port_counter_now() - t0 - (uint32_t)overhead;
            if (t == 0) {                  /* turns the 9 frames its delta reads into L */
                feat_first += c;
                continue;
            }
            feat += c;
            if (c > feat_max) feat_max = c;
        }
    }
    uint32_t res = port_counter_res();
    line("hop", hop * res / nhop);
    line("hop_max", hop_max * res);
    for (int k = 0; k < N_ST; k++) line(st_name[k], st[k] * res / nst);
    line("finish", fin * res / ETP_FE_PROF_UTTS);
    line("pad_frames", npad / ETP_FE_PROF_UTTS);
    line("pad_max", pad_max * res);
    line("finish_rest", fin_rest * res / ETP_FE_PROF_UTTS);
    line("features_first", feat_first * res / ETP_FE_PROF_UTTS);
    line("features", feat * res / (ETP_FE_PROF_UTTS * (ETP_FE_FRAMES - 1)));
    line("features_max", feat_max * res);
    line("frame_bytes", sizeof fe);
    out("END\n");
    for (;;) { }
}
