#ifndef MOD_ATR_H
#define MOD_ATR_H
#endif
