#ifndef MOD_ATR_HTTP_H
#define MOD_ATR_HTTP_H
#endif
