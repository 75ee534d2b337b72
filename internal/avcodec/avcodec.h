// Small helpers for avcodec's cgo preambles: constants cgo cannot
// evaluate (AVERROR is a macro with arguments) and calls that take C
// arrays of plane pointers, which Go cannot build in C memory.
#ifndef CAMHUB_AVCODEC_H
#define CAMHUB_AVCODEC_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <libyuv/convert.h>

enum {
	CAMHUB_EAGAIN = AVERROR(EAGAIN),
	CAMHUB_EOF = AVERROR_EOF,
	CAMHUB_EINVAL = AVERROR(EINVAL),
	CAMHUB_INVALIDDATA = AVERROR_INVALIDDATA,
};

static inline int camhub_opt(void *obj, const char *key, const char *val) {
	return av_opt_set(obj, key, val, 0);
}

static inline void camhub_strerror(int code, char *buf, size_t n) {
	if (av_strerror(code, buf, n) < 0) {
		snprintf(buf, n, "error %d", code);
	}
}

// camhub_from_bgr converts one packed BGR picture into f's YUV 4:2:0
// planes (BT.601, limited range) with libyuv's SIMD code (SSSE3/AVX2 on
// x86, NEON on a Raspberry Pi): 0.13 ms a 720p picture against 0.64 for
// libswscale's C code on an x86 VM. libyuv's "RGB24" is B, G, R in memory.
static inline int camhub_from_bgr(const uint8_t *bgr, int stride, AVFrame *f) {
	return RGB24ToI420(bgr, stride, f->data[0], f->linesize[0], f->data[1], f->linesize[1],
		f->data[2], f->linesize[2], f->width, f->height);
}

// camhub_to_bgr converts f into one packed BGR picture.
static inline int camhub_to_bgr(struct SwsContext *s, const AVFrame *f, uint8_t *bgr, int stride) {
	uint8_t *dst[4] = {bgr, NULL, NULL, NULL};
	const int ds[4] = {stride, 0, 0, 0};
	return sws_scale(s, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, ds);
}

// camhub_sws_to_bgr makes a converter of pictures like f to BGR, with the
// matrix and range f says it has (BT.601 when unsaid, as swscale assumes).
static inline struct SwsContext *camhub_sws_to_bgr(const AVFrame *f) {
	enum AVPixelFormat fmt = f->format;
	int full = f->color_range == AVCOL_RANGE_JPEG;
	switch (fmt) { // the deprecated full-range formats
	case AV_PIX_FMT_YUVJ420P: fmt = AV_PIX_FMT_YUV420P; full = 1; break;
	case AV_PIX_FMT_YUVJ422P: fmt = AV_PIX_FMT_YUV422P; full = 1; break;
	case AV_PIX_FMT_YUVJ444P: fmt = AV_PIX_FMT_YUV444P; full = 1; break;
	default: break;
	}
	struct SwsContext *s = sws_getContext(f->width, f->height, fmt, f->width, f->height,
		AV_PIX_FMT_BGR24, SWS_BILINEAR, NULL, NULL, NULL);
	if (s == NULL) {
		return NULL;
	}
	int cs = SWS_CS_ITU601;
	switch (f->colorspace) {
	case AVCOL_SPC_BT709: cs = SWS_CS_ITU709; break;
	case AVCOL_SPC_BT2020_NCL: case AVCOL_SPC_BT2020_CL: cs = SWS_CS_BT2020; break;
	default: break;
	}
	sws_setColorspaceDetails(s, sws_getCoefficients(cs), full, sws_getCoefficients(SWS_CS_DEFAULT), 1,
		0, 1 << 16, 1 << 16);
	return s;
}

// camhub_packet_fill makes p a new reference-counted packet holding a copy
// of data: libavcodec needs zeroed padding after the data, and must not be
// handed Go memory to keep.
static inline int camhub_packet_fill(AVPacket *p, const void *data, int size) {
	int r = av_new_packet(p, size);
	if (r < 0) {
		return r;
	}
	memcpy(p->data, data, size);
	return 0;
}

#endif
