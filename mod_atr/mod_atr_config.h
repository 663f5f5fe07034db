#ifndef MOD_ATR_CONFIG_H
#define MOD_ATR_CONFIG_H
#endif
